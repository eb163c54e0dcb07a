package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/ssf/ssftest"
	"github.com/writhq/writ/broker/visible"
	"github.com/writhq/writ/store/storetest"
)

// Issue 10, item 5: `writ audit export` wrote agent and operator text with
// raw C1 controls and invisible characters. Now every such character is a
// JSON escape, and the export still decodes to exactly what was recorded.
func TestAuditExportMakesHiddenCharactersVisible(t *testing.T) {
	st := storetest.MustOpen(t)
	svc, err := broker.New(context.Background(), ssftest.Config(), st, broker.Options{Issuer: "https://writ.example", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	const hostile = "read\u2028APPROVE ME \u0085\u009b31m \u00AD\u034F\u115F\u3164\u180E\u2062\uFE0F\u202E \U000E0041"
	req, err := svc.Submit(context.Background(), ssftest.Agent, broker.SubmitInput{LoginHint: "oncall", Intent: "x", Scopes: []string{"contents:read"}, Resource: ssftest.Resource})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Deny(context.Background(), ssftest.Operator, req.ID, hostile); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	cmd.SetErr(&bytes.Buffer{})
	if err := exportAudit(cmd, st, &out, 1); err != nil {
		t.Fatal(err)
	}
	for b := out.Bytes(); len(b) > 0; {
		r, size := utf8.DecodeRune(b)
		if visible.Hidden(r) {
			t.Fatalf("export holds U+%04X raw:\n%s", r, out.String())
		}
		b = b[size:]
	}
	found := false
	for line := range strings.Lines(out.String()) {
		var e broker.AuditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if strings.Contains(e.Message, hostile) || strings.Contains(string(e.Data), `\u2028APPROVE`) {
			found = true
		}
	}
	if !found {
		t.Fatalf("the denial's reason is not in the export, exactly:\n%s", out.String())
	}
}
