package overload

import (
	"bytes"
	"errors"
	"testing"
)

// drainFramer collects every unit the framer holds: messages and a "PING"
// marker per ping. It returns the terminal error (nil for errNeedMore).
func drainFramer(f *framer, out *[][]byte) error {
	for {
		u, m, _, err := f.next()
		if errors.Is(err, errNeedMore) {
			return nil
		}
		if err != nil {
			return err
		}
		if u == unitPing {
			*out = append(*out, []byte("PING"))
			continue
		}
		*out = append(*out, append([]byte(nil), m...))
	}
}

func TestFramerEverySplit(t *testing.T) {
	a, b := invite("z9hG4bK1"), inDialog("BYE", "z9hG4bK2")
	stream := append(append(append([]byte("\r\n\r\n"), a...), "\r\n"...), b...)
	want := [][]byte{[]byte("PING"), a, b}
	for cut1 := 0; cut1 <= len(stream); cut1++ {
		for _, cut2 := range []int{cut1, (cut1 + len(stream)) / 2, len(stream)} {
			f := newFramer(65535)
			var got [][]byte
			for _, part := range [][]byte{stream[:cut1], stream[cut1:cut2], stream[cut2:]} {
				f.write(part)
				if err := drainFramer(f, &got); err != nil {
					t.Fatalf("cut %d/%d: %v", cut1, cut2, err)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("cut %d/%d: %d units, want %d: %q", cut1, cut2, len(got), len(want), got)
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("cut %d/%d: unit %d = %q, want %q", cut1, cut2, i, got[i], want[i])
				}
			}
			if f.pending() {
				t.Fatalf("cut %d/%d: still pending", cut1, cut2)
			}
		}
	}
}

func TestFramerKeepAlives(t *testing.T) {
	for _, tt := range []struct {
		name   string
		writes []string
		pings  int
	}{
		{"ping", []string{"\r\n\r\n"}, 1},
		{"ping split", []string{"\r\n", "\r\n"}, 1},
		{"pong only", []string{"\r\n"}, 0},
		{"two pings", []string{"\r\n\r\n\r\n\r\n"}, 2},
		{"ping split in the CRLF", []string{"\r\n\r", "\n"}, 1},
		{"ping then pong", []string{"\r\n\r\n", "\r\n"}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFramer(65535)
			var got [][]byte
			for _, w := range tt.writes {
				f.write([]byte(w))
				if err := drainFramer(f, &got); err != nil {
					t.Fatal(err)
				}
			}
			if len(got) != tt.pings {
				t.Fatalf("%d pings, want %d", len(got), tt.pings)
			}
			if f.pending() {
				t.Fatal("keep-alive left pending: it would count as a slow message")
			}
		})
	}
}

func TestFramerLimits(t *testing.T) {
	t.Run("head over max", func(t *testing.T) {
		f := newFramer(2048)
		f.write([]byte("INVITE sip:h SIP/2.0\r\n"))
		for i := 0; i < 200; i++ {
			f.write([]byte("X-Filler: 0123456789\r\n"))
		}
		_, _, _, err := f.next()
		if !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("start line over max", func(t *testing.T) {
		f := newFramer(1024)
		f.write(append([]byte("INVITE sip:"), bytes.Repeat([]byte("a"), 2000)...))
		if _, _, _, err := f.next(); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("Content-Length over max: refused before the body, head known", func(t *testing.T) {
		f := newFramer(65535)
		f.write(msg("", "INVITE sip:h SIP/2.0", "Via: SIP/2.0/TCP a;branch=z9hG4bKbig", "Content-Length: 4294967295"))
		_, _, h, err := f.next()
		if !errors.Is(err, ErrMessageTooLarge) || h.Method != "INVITE" || string(h.Branch) != "z9hG4bKbig" {
			t.Fatalf("err = %v, head %+v", err, h)
		}
	})
	t.Run("no Content-Length", func(t *testing.T) {
		f := newFramer(65535)
		f.write([]byte("OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/TCP a\r\n\r\n"))
		if _, _, h, err := f.next(); !errors.Is(err, ErrMalformed) || h.Method != "OPTIONS" {
			t.Fatalf("err = %v, head %+v", err, h)
		}
	})
	t.Run("garbage start line refused at its first CRLF", func(t *testing.T) {
		f := newFramer(65535)
		f.write([]byte("\x16\x03\x01 TLS hello\r\n"))
		if _, _, _, err := f.next(); !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestFramerTrickleIsLinear feeds a large head one byte per write: the
// search for the end of the head resumes where it stopped, so the work is
// linear in the input, not quadratic.
func TestFramerTrickleIsLinear(t *testing.T) {
	m := msg("", "INVITE sip:h SIP/2.0", "X-Pad: "+string(bytes.Repeat([]byte("p"), 60000)))
	f := newFramer(65535)
	var got [][]byte
	for i := range m {
		f.write(m[i : i+1])
		if err := drainFramer(f, &got); err != nil {
			t.Fatal(err)
		}
		if i < len(m)-1 && (!f.pending() || f.scanned != len(m[:i+1]) && f.scanned != 0) {
			t.Fatalf("byte %d: pending %v scanned %d", i, f.pending(), f.scanned)
		}
	}
	if len(got) != 1 || !bytes.Equal(got[0], m) {
		t.Fatalf("got %d units", len(got))
	}
}

func TestFramerReleasesBigBuffer(t *testing.T) {
	f := newFramer(65535)
	big := msg(string(bytes.Repeat([]byte("b"), 40000)), "MESSAGE sip:h SIP/2.0", "Via: SIP/2.0/TCP a;branch=z9hG4bKm")
	f.write(big)
	var got [][]byte
	if err := drainFramer(f, &got); err != nil || len(got) != 1 {
		t.Fatalf("%v %d", err, len(got))
	}
	f.write([]byte("\r\n"))
	if cap(f.buf) > 16<<10 {
		t.Fatalf("buffer of %d bytes kept after the message", cap(f.buf))
	}
}

func FuzzFramer(f *testing.F) {
	f.Add(append(invite("z9hG4bK1"), inDialog("ACK", "z9hG4bK2")...), uint8(7))
	f.Add([]byte("\r\n\r\nSIP/2.0 200 OK\r\nl: 2\r\n\r\nok"), uint8(3))
	f.Add([]byte("INVITE sip:h SIP/2.0\r\nContent-Length: 99999999\r\n\r\n"), uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		n := int(chunk)%64 + 1
		fr := newFramer(4096)
		var got [][]byte
		for off := 0; off < len(stream); off += n {
			fr.write(stream[off:min(off+n, len(stream))])
			if err := drainFramer(fr, &got); err != nil {
				return // the connection would be closed
			}
		}
		// Every message is a prefix-ordered piece of the stream, with a
		// head and exactly its Content-Length of body.
		rest := stream
		for _, m := range got {
			if string(m) == "PING" {
				continue
			}
			i := bytes.Index(rest, m)
			if i < 0 {
				t.Fatalf("message %q not in the stream in order", m)
			}
			if len(bytes.Trim(rest[:i], "\r\n")) != 0 {
				t.Fatalf("bytes other than CRLF skipped before %q", m)
			}
			rest = rest[i+len(m):]
			h, err := ParseHead(m)
			if err != nil || int64(len(m)) != int64(h.Len)+h.ContentLength {
				t.Fatalf("message %q: %v, len %d head %d body %d", m, err, len(m), h.Len, h.ContentLength)
			}
		}
	})
}
