package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/dsn-ims/dsn/node"
)

// maxBody bounds what is read from an admin API reply.
const maxBody = 8 << 20

// adminClient reads a node's admin HTTP API.
type adminClient struct {
	base string // "http://host:port"
	hc   *http.Client
}

func newAdminClient(addr string) (*adminClient, error) {
	base, err := adminBase(addr)
	if err != nil {
		return nil, err
	}
	return &adminClient{base: base, hc: &http.Client{}}, nil
}

// adminBase turns "host:port" or "http://host:port/" into the base URL.
func adminBase(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", usageErrorf("-admin %q: want host:port or http://host:port", addr)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// apiError is a non-2xx answer of the admin API.
type apiError struct {
	URL    string
	Status int
	Msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.URL, e.Status, e.Msg)
}

// get fetches path and decodes the JSON body into v. A 404 is a problem
// (exit 1); other failures are connection or usage errors (exit 2).
func (c *adminClient) get(ctx context.Context, path string, v any) error {
	u := c.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return usageErrorf("admin request %s: %v", u, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read %s: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		ae := &apiError{URL: u, Status: resp.StatusCode, Msg: msg}
		if resp.StatusCode == http.StatusNotFound {
			return withCode(exitProblem, ae)
		}
		return ae
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: reply is not the expected JSON (%v); is %s a dsn-node admin address?", u, err, c.base)
	}
	return nil
}

// ready reads GET /readyz: 200 is ready, 503 not ready with the reason
// as its body.
func (c *adminClient) ready(ctx context.Context) (bool, string, error) {
	u := c.base + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, "", usageErrorf("admin request %s: %v", u, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, "", c.unreachable(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	why := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusOK:
		return true, why, nil
	case http.StatusServiceUnavailable:
		return false, why, nil
	}
	return false, "", &apiError{URL: u, Status: resp.StatusCode, Msg: why}
}

func (c *adminClient) unreachable(err error) error {
	return fmt.Errorf("cannot reach the admin API at %s: %w (is dsn-node running with -admin on that address? set -admin or %s)", c.base, err, envAdmin)
}

func (c *adminClient) status(ctx context.Context) (node.Status, error) {
	var st node.Status
	err := c.get(ctx, "/v1/status", &st)
	return st, err
}

func (c *adminClient) lookup(ctx context.Context, aor string) (node.LookupResult, error) {
	var lr node.LookupResult
	err := c.get(ctx, "/v1/lookup?aor="+url.QueryEscape(aor), &lr)
	return lr, err
}

// bindingsReply is the body of GET /v1/bindings.
type bindingsReply struct {
	AOR      string             `json:"aor"`
	Bindings []node.BindingInfo `json:"bindings"`
}

func (c *adminClient) bindings(ctx context.Context, aor string) (bindingsReply, error) {
	var br bindingsReply
	err := c.get(ctx, "/v1/bindings?aor="+url.QueryEscape(aor), &br)
	if br.Bindings == nil {
		br.Bindings = []node.BindingInfo{}
	}
	return br, err
}

// fetchStatus reads GET /v1/status of the node at addr.
func fetchStatus(ctx context.Context, addr string) (node.Status, error) {
	c, err := newAdminClient(addr)
	if err != nil {
		return node.Status{}, err
	}
	return c.status(ctx)
}
