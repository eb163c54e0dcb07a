package demo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/policy"
	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/store/storetest"
)

// TestScriptsFitTheConfiguration keeps the simulated agents' tasks within
// their ceilings and the catalogue, so none is refused before an operator
// sees it, except those the demo policy is meant to refuse.
func TestScriptsFitTheConfiguration(t *testing.T) {
	setup, err := NewSetup("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := Policy()
	if err != nil {
		t.Fatal(err)
	}
	for id, list := range scripts {
		a, ok := setup.Config.Agent(id)
		if !ok {
			t.Fatalf("scripts name unknown agent %s", id)
		}
		for _, s := range list {
			var parent *broker.Grant
			for cur := &s; cur != nil; cur = cur.followOn {
				uri := setup.Resources[cur.res]
				res, _ := setup.Config.Resource(uri)
				req := &broker.TaskRequest{AgentID: id, Intent: cur.intent,
					Terms: broker.Terms{Scopes: cur.scopes, Details: cur.details(uri), Resource: uri, TTL: cur.ttl}}
				if parent != nil {
					req.ParentID = parent.RequestID
				}
				verdict := pol.Evaluate(context.Background(), broker.PolicyInput{Request: req, Agent: a, Resource: res, Parent: parent, Now: time.Now()})
				if denied := verdict.Verdict == broker.VerdictDeny; denied != cur.policyDenied {
					t.Errorf("%s %q: policy verdict %s, want denied=%v\n  %s", id, cur.intent, verdict.Verdict, cur.policyDenied,
						strings.Join(verdict.Trace, "\n  "))
				}
				parent = &broker.Grant{RequestID: "parent", Terms: req.Terms}
				ceiling, ok := a.CeilingFor(uri)
				if !ok {
					t.Fatalf("%s may not ask for %s (%q)", id, cur.res, cur.intent)
				}
				for _, sc := range cur.scopes {
					if !slices.Contains(ceiling, sc) {
						t.Errorf("%s asks for %s beyond its ceiling (%q)", id, sc, cur.intent)
					}
				}
				if cur.ttl > a.MaxTTL {
					t.Errorf("%s asks for %s, beyond its %s (%q)", id, cur.ttl, a.MaxTTL, cur.intent)
				}
			}
		}
	}
}

// TestFleetAgainstTheRealAPI runs the simulated agents against a real
// agent API and the guarded resource server, approves what they ask, and
// sees grants used and completed.
// TestDemoPolicyIsTheExampleWithoutTheTwoPersonRule keeps the embedded
// copy and testdata/policy.yaml (the README's example) from drifting.
func TestDemoPolicyIsTheExampleWithoutTheTwoPersonRule(t *testing.T) {
	demo, err := Policy()
	if err != nil {
		t.Fatal(err)
	}
	example, err := policy.Load("../../testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(example.Rules(), func(r string) bool { return r == "two-person-secret-rotation" })
	if !slices.Equal(demo.Rules(), want) {
		t.Errorf("demo rules %v, want %v", demo.Rules(), want)
	}
	strip := func(b []byte) string {
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	raw, err := os.ReadFile("../../testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	two := "- name: two-person-secret-rotation\nwhen: '\"secrets:rotate\" in request.scopes'\neffect:\nrequire_approvals: 2\n"
	if got, want := strip(policyYAML), strings.Replace(strip(raw), two, "", 1); got != want {
		t.Errorf("broker/demo/policy.yaml is not testdata/policy.yaml without the two-person rule:\n%s\n---\n%s", got, want)
	}
}

func TestFleetAgainstTheRealAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo's agents for a few seconds")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	setup, err := NewSetup("http://" + rsLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + apiLn.Addr().String()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pol, err := Policy()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := broker.New(ctx, setup.Config, storetest.MustOpen(t), broker.Options{Issuer: issuer, Logger: log, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	var clients []httpapi.ResourceClient
	for _, r := range setup.Config.Resources {
		clients = append(clients, httpapi.ResourceClient{ID: r.URI, Keys: r.Keys})
	}
	api, err := httpapi.New(svc, httpapi.Options{PublicURL: issuer, RequireDPoP: true, ResourceClients: clients, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	feed, err := ssf.New(ctx, svc, ssf.Options{Logger: log, Authenticate: func(r *http.Request) (string, error) {
		a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return "", errors.New("no credential")
		}
		c, err := api.AuthenticateAssertion(r.Context(), httpapi.AssertionTypeJWTBearer, a, "", issuer+r.URL.Path)
		if err != nil {
			return "", err
		}
		return c.ID, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range feed.Patterns() {
		api.Handle(p, feed)
	}
	srv := &httptest.Server{Listener: apiLn, Config: &http.Server{Handler: api}}
	srv.Start()
	t.Cleanup(srv.Close)
	rs, err := NewResourceServer(setup, issuer, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		go func() { _ = feed.Run(ctx) }()
		go func() { _ = svc.Run(ctx) }()
		go func() { _ = rs.Serve(ctx, rsLn) }()
		fleet := &Fleet{Setup: setup, Issuer: issuer, Pace: time.Hour, Step: 100 * time.Millisecond, Logger: log}
		_ = fleet.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	op := broker.Operator{Issuer: "https://idp.test", Subject: "tester", Email: "tester@idp.test", EmailVerified: true}
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		pending, err := svc.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range pending {
			if _, err := svc.Approve(ctx, op, r.ID); err != nil && broker.ErrorCode(err) != broker.ECONFLICT {
				t.Fatalf("approve: %v", err)
			}
		}
		if err := svc.FlushUsage(ctx); err != nil {
			t.Fatal(err)
		}
		grants, err := svc.Grants(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range grants {
			if g.State == broker.GrantCompleted && g.Uses > 0 {
				return // an agent was granted, used its token at the guarded API, and reported done
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no simulated agent completed a task that used the resource server")
}
