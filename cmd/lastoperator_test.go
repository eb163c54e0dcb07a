package cmd

import (
	"log/slog"
	"os"
	"testing"

	"github.com/writhq/writ/broker"
)

// TestLastOperatorSealed: a remembered operator belongs to one store at one
// provider, and a development identity is never handed to a real sign-in
// (issue 9, reproduction 7: the demo's "Dana Demo" audited a real `! !`).
func TestLastOperatorSealed(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	dana := broker.Operator{Issuer: "http://127.0.0.1:5556", Subject: "u-dana", Name: "Dana Demo", Dev: true}
	priya := broker.Operator{Issuer: "https://idp.example.com", Subject: "priya", Name: "Priya"}
	demoKey := "/tmp/writ-demo-1/writ.db http://127.0.0.1:5556"
	realKey := "/var/lib/writ/writ.db https://idp.example.com"
	saveLastOperator(dir, demoKey, dana, log)
	if op := loadLastOperator(dir, realKey, false); op != nil {
		t.Fatalf("a real console got %s from another store", op.Display())
	}
	if op := loadLastOperator(dir, demoKey, false); op != nil {
		t.Fatalf("a non-development sign-in got the development identity %s", op.Display())
	}
	if op := loadLastOperator(dir, demoKey, true); op == nil || op.Subject != "u-dana" {
		t.Fatalf("the demo's own store lost its operator: %v", op)
	}
	saveLastOperator(dir, realKey, priya, log)
	if op := loadLastOperator(dir, realKey, false); op == nil || op.Subject != "priya" {
		t.Fatalf("real operator not remembered: %v", op)
	}
	if fi, err := os.Stat(lastOperatorPath(dir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("last-operator file: %v %v", fi, err)
	}
	// A file in the old single-operator format remembers nobody.
	if err := os.WriteFile(lastOperatorPath(dir), []byte(`{"iss":"x","sub":"y","dev":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if op := loadLastOperator(dir, realKey, false); op != nil {
		t.Fatalf("old-format file gave %v", op)
	}
}
