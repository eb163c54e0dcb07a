package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/httpapi"
)

// floodAgents is how many agents poll at once in TestThousandAgentsPollAtOnce.
const floodAgents = 1000

// TestThousandAgentsPollAtOnce: 1,000 agents submit a task at the same
// moment, poll it at the same moment (each is told authorization_pending,
// or slow_down for polling again too soon; nobody gets a token or a server
// error), and once an operator has approved every request, each polls
// with a DPoP proof at the same moment, every hundredth agent twice: each
// agent gets exactly one token, bound to its own key, and a duplicate
// poll is refused with invalid_grant. Every request carries its own client
// assertion, signed before the burst so the requests arrive together.
func TestThousandAgentsPollAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 agents")
	}
	keys := make([]*agent.Key, floodAgents)
	for i := range keys {
		keys[i] = mustKey(t, fmt.Sprintf("flood-%04d", i))
	}
	e := newEnv(t, envOptions{config: func(c *broker.Config) {
		for _, k := range keys {
			c.Agents = append(c.Agents, broker.Agent{ID: k.AgentID, Keys: []jose.JSONWebKey{k.PublicJWK()}, MaxTTL: time.Hour,
				Ceiling: []broker.CeilingEntry{{Resource: gitURI, Scopes: []string{"contents:read"}}}})
		}
	}})
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: floodAgents}}
	t.Cleanup(hc.CloseIdleConnections)

	// All at once: one request per agent (or per form), released together.
	burst := func(forms []url.Values, header func(i int) []string) []*response {
		t.Helper()
		answers := make([]*response, len(forms))
		errs := make([]error, len(forms))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, form := range forms {
			wg.Go(func() {
				<-start
				var h []string
				if header != nil {
					h = header(i)
				}
				answers[i], errs[i] = postForm(hc, e.url+"/"+strings.TrimPrefix(pathOf(form), "/"), form, h...)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		return answers
	}

	submits := make([]url.Values, floodAgents)
	for i, k := range keys {
		f := e.authForm(k, url.Values{"scope": {"contents:read"}, "login_hint": {"oncall"},
			"binding_message": {"read the changelog"}, "resource": {gitURI}})
		f.Set(pathKey, "/bc-authorize")
		submits[i] = f
	}
	ids := make([]string, floodAgents)
	seen := map[string]bool{}
	for i, r := range burst(submits, nil) {
		ids[i] = r.str("auth_req_id")
		if r.Status != http.StatusOK || ids[i] == "" || seen[ids[i]] {
			t.Fatalf("agent %d: submission answered %d %s", i, r.Status, r.Raw)
		}
		seen[ids[i]] = true
	}

	polls := func() []url.Values {
		out := make([]url.Values, floodAgents)
		for i, k := range keys {
			f := e.authForm(k, url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {ids[i]}})
			f.Set(pathKey, "/token")
			out[i] = f
		}
		return out
	}
	for round := range 2 {
		for i, r := range burst(polls(), nil) {
			code := r.str("error")
			if r.Status != http.StatusBadRequest || (code != "authorization_pending" && code != "slow_down") {
				t.Fatalf("round %d, agent %d: a poll before any decision answered %d %s", round, i, r.Status, r.Raw)
			}
		}
	}

	for i, id := range ids {
		if _, err := e.svc.Approve(context.Background(), e.op, id); err != nil {
			t.Fatalf("approve %d: %v", i, err)
		}
	}
	e.clock.Advance(time.Minute) // past any slow_down the agents earned

	signers := make([]*dpop.Signer, floodAgents)
	for i := range signers {
		signers[i] = dpopKey(t)
	}
	// Every agent polls; every hundredth polls twice at once. (Each refused
	// duplicate rolls back the group commit it shares and makes the rest
	// of that group run again: with every agent polling twice, the burst
	// takes seconds instead of a fraction of one. See the report of issue
	// 12; the property tested here holds either way.)
	all := polls()
	dup := map[int]int{} // agent → index of its second poll in all
	for i, f := range polls() {
		if i%100 == 0 {
			dup[i] = len(all)
			all = append(all, f)
		}
	}
	agentOf := func(j int) int {
		if j < floodAgents {
			return j
		}
		for a, k := range dup {
			if k == j {
				return a
			}
		}
		return -1
	}
	proofs := make([]string, len(all))
	for j := range all {
		p, err := signers[agentOf(j)].Proof(http.MethodPost, e.api.Issuer()+"/token", dpop.ProofOptions{Now: e.clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		proofs[j] = p
	}
	answers := burst(all, func(j int) []string { return []string{"DPoP", proofs[j]} })
	jtis := map[string]bool{}
	for i := range floodAgents {
		mine := []*response{answers[i]}
		if j, ok := dup[i]; ok {
			mine = append(mine, answers[j])
		}
		var won *response
		for _, r := range mine {
			switch {
			case r.Status == http.StatusOK:
				if won != nil {
					t.Fatalf("agent %d: both polls got a token", i)
				}
				won = r
			case r.Status == http.StatusBadRequest && r.str("error") == "invalid_grant":
			default:
				t.Fatalf("agent %d: a poll after approval answered %d %s", i, r.Status, r.Raw)
			}
		}
		if won == nil {
			t.Fatalf("agent %d: neither poll got its token", i)
		}
		tok := won.str("access_token")
		if won.str("token_type") != "DPoP" {
			t.Fatalf("agent %d: token_type %q", i, won.str("token_type"))
		}
		c, err := e.svc.VerifyAccessToken(tok)
		if err != nil {
			t.Fatalf("agent %d: its token does not verify: %v", i, err)
		}
		if c.Subject != keys[i].AgentID || c.Cnf == nil || c.Cnf.JKT != signers[i].JKT() || jtis[c.JTI] {
			t.Fatalf("agent %d: token for %s, cnf %+v, jti %s (seen %t)", i, c.Subject, c.Cnf, c.JTI, jtis[c.JTI])
		}
		jtis[c.JTI] = true
	}
}

// pathKey carries a form's endpoint through burst; it is removed before
// the form is sent.
const pathKey = "\x00path"

func pathOf(form url.Values) string {
	p := form.Get(pathKey)
	form.Del(pathKey)
	return p
}

// postForm is env.post for many goroutines: errors are returned, not fatal.
func postForm(hc *http.Client, u string, form url.Values, header ...string) (*response, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := &response{Status: resp.StatusCode, Header: resp.Header, Raw: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out.Body); err != nil {
			return nil, fmt.Errorf("answer is not JSON: %v: %s", err, b)
		}
	}
	return out, nil
}
