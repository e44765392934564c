package tcp

import (
	"strconv"

	"github.com/dsn-ims/dsn/dht"
)

// op names one Chord RPC on the wire. Values are part of the protocol:
// never renumber, only append.
type op byte

const (
	opPing op = 1 + iota
	opGetNeighbors
	opNotify
	opFindNext
	opLeave
	opPut
	opGet
	opStore
	opSync
	opEnd // first unused value
)

func (o op) String() string {
	switch o {
	case opPing:
		return "ping"
	case opGetNeighbors:
		return "get-neighbors"
	case opNotify:
		return "notify"
	case opFindNext:
		return "find-next"
	case opLeave:
		return "leave"
	case opPut:
		return "put"
	case opGet:
		return "get"
	case opStore:
		return "store"
	case opSync:
		return "sync"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// idempotent reports whether repeating the RPC has the same effect as
// sending it once, so a call lost with a reused connection may be retried
// on a fresh one. Put is the exception: the owner assigns a new version.
func (o op) idempotent() bool { return o != opPut }

// Message kinds: the first byte of every plaintext frame.
const (
	kindRequest  byte = 1
	kindResponse byte = 2
)

// message is one decoded frame. Which payload fields are meaningful is
// fixed by (kind, op); the others stay zero and are not encoded:
//
//	op            request            response
//	ping          -                  peer
//	get-neighbors -                  neighbors
//	notify        peer               -
//	find-next     target, exclude    step
//	leave         notice             -
//	put           put                putResult
//	get           key                record, found
//	store         records            -
//	sync          digest             reply
//
// A response whose code is not codeOK carries text instead of a payload.
type message struct {
	kind byte
	id   uint64 // request ID chosen by the caller, echoed in the response
	op   op

	timeoutMs uint64  // request: the caller's remaining budget, 0 = none
	code      errCode // response: outcome
	text      string  // response with code != codeOK: the remote error

	peer      dht.Peer
	neighbors dht.Neighbors
	target    dht.ID
	exclude   []dht.ID
	step      dht.Step
	notice    dht.LeaveNotice
	put       dht.PutRequest
	putResult dht.PutResult
	key       string
	record    dht.Record
	found     bool
	records   []dht.Record
	digest    dht.Digest
	reply     dht.DigestReply
}

// appendMessage appends m's encoding to dst:
//
//	request:  kind=1 | uvarint id | op | uvarint timeoutMs | payload
//	response: kind=2 | uvarint id | op | code | (code==0 ? payload : string text)
func appendMessage(dst []byte, m *message) []byte {
	e := encoder{buf: dst}
	e.byte(m.kind)
	e.uvarint(m.id)
	e.byte(byte(m.op))
	if m.kind == kindRequest {
		e.uvarint(m.timeoutMs)
		e.request(m)
		return e.buf
	}
	e.byte(byte(m.code))
	if m.code != codeOK {
		e.string(m.text)
		return e.buf
	}
	e.response(m)
	return e.buf
}

func (e *encoder) request(m *message) {
	switch m.op {
	case opNotify:
		e.peer(m.peer)
	case opFindNext:
		e.id(m.target)
		e.ids(m.exclude)
	case opLeave:
		e.leaveNotice(m.notice)
	case opPut:
		e.putRequest(m.put)
	case opGet:
		e.string(m.key)
	case opStore:
		e.records(m.records)
	case opSync:
		e.digest(m.digest)
	}
}

func (e *encoder) response(m *message) {
	switch m.op {
	case opPing:
		e.peer(m.peer)
	case opGetNeighbors:
		e.neighbors(m.neighbors)
	case opFindNext:
		e.step(m.step)
	case opPut:
		e.putResult(m.putResult)
	case opGet:
		e.record(m.record)
		e.bool(m.found)
	case opSync:
		e.digestReply(m.reply)
	}
}

// decodeMessage decodes one plaintext frame. On error, kind and id are set
// if they could be read, so a server can still answer a request it does not
// understand (for example an op from a newer version).
func decodeMessage(b []byte) (message, error) {
	d := decoder{buf: b}
	var m message
	kind := d.byte()
	if d.err == nil && kind != kindRequest && kind != kindResponse {
		d.fail("unknown message kind %d", kind)
	}
	id := d.uvarint()
	if d.err != nil {
		return m, d.err
	}
	m.kind, m.id = kind, id
	m.op = op(d.byte())
	if d.err == nil && (m.op == 0 || m.op >= opEnd) {
		d.fail("unknown op %d", m.op)
	}
	if kind == kindRequest {
		m.timeoutMs = d.uvarint()
		d.request(&m)
		return m, d.finish()
	}
	m.code = errCode(d.byte())
	switch {
	case d.err != nil:
	case m.code >= codeEnd:
		d.fail("unknown result code %d", m.code)
	case m.code != codeOK:
		m.text = d.string()
	default:
		d.response(&m)
	}
	return m, d.finish()
}

func (d *decoder) request(m *message) {
	switch m.op {
	case opNotify:
		m.peer = d.peer()
	case opFindNext:
		m.target = d.id()
		m.exclude = d.ids()
	case opLeave:
		m.notice = d.leaveNotice()
	case opPut:
		m.put = d.putRequest()
	case opGet:
		m.key = d.string()
	case opStore:
		m.records = d.records()
	case opSync:
		m.digest = d.digest()
	}
}

func (d *decoder) response(m *message) {
	switch m.op {
	case opPing:
		m.peer = d.peer()
	case opGetNeighbors:
		m.neighbors = d.neighbors()
	case opFindNext:
		m.step = d.step()
	case opPut:
		m.putResult = d.putResult()
	case opGet:
		m.record = d.record()
		m.found = d.bool()
	case opSync:
		m.reply = d.digestReply()
	}
}
