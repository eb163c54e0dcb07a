package policy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/writhq/writ/broker"
)

// Limits on a policy file, so a mistaken or hostile file cannot make
// loading slow: a policy is a page of rules, not a program.
const (
	MaxFileSize       = 1 << 20 // bytes
	MaxRules          = 500
	MaxExpressionSize = 4096 // bytes of one when expression
	MaxReasonLength   = 500  // characters of a deny reason
	MaxApprovals      = 10   // require_approvals above this is surely a mistake
)

// Error is a policy file error at a place in the file: the line, the
// rule (by index and name) and the field.
type Error struct {
	File  string
	Line  int
	Rule  int    // index in rules, -1 outside any rule
	Name  string // the rule's name, when it has one
	Field string // e.g. "when", "effect.max_ttl"
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Rule >= 0 {
		fmt.Fprintf(&b, ": rules[%d]", e.Rule)
		if e.Name != "" {
			fmt.Fprintf(&b, " (%s)", e.Name)
		}
		if e.Field != "" {
			b.WriteString("." + e.Field)
		}
	} else if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Load reads and compiles the policy file at path.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse compiles a policy read from name (used in errors and traces).
// Every when expression is parsed and type-checked here, so a policy that
// loads can only fail at evaluation on the data it is given.
func Parse(name string, data []byte) (*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Rule: -1, Msg: fmt.Sprintf("the file is larger than %d bytes", MaxFileSize)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(name, err)
	}
	p := &Policy{name: name}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return p, nil // an empty file is a policy with no rules
	}
	root := doc.Content[0]
	fail := func(n *yaml.Node, field, format string, args ...any) error {
		return &Error{File: name, Line: n.Line, Rule: -1, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return p, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail(root, "", "a policy file is a mapping with a rules list")
	}
	var rules *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "rules":
			rules = v
		default:
			return nil, fail(k, "", "unknown field %q (a policy file has only rules)", k.Value)
		}
	}
	if rules == nil || (rules.Kind == yaml.ScalarNode && rules.Tag == "!!null") {
		return p, nil
	}
	if rules.Kind != yaml.SequenceNode {
		return nil, fail(rules, "rules", "must be a list of rules")
	}
	if len(rules.Content) > MaxRules {
		return nil, fail(rules, "rules", "%d rules: at most %d", len(rules.Content), MaxRules)
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", name, err)
	}
	seen := map[string]int{}
	for i, n := range rules.Content {
		r, err := parseRule(name, i, n)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[r.name]; dup {
			return nil, r.fail("name", n.Line, "rule %s is declared twice (first as rules[%d])", r.name, j)
		}
		seen[r.name] = i
		if err := r.compile(env); err != nil {
			return nil, err
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// yamlError turns a yaml.v3 error ("yaml: line 3: ...") into an *Error.
func yamlError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if _, rest, ok := strings.Cut(msg, "line "); ok {
		if n, err := strconv.Atoi(strings.TrimRightFunc(strings.SplitN(rest, ":", 2)[0], func(r rune) bool { return r < '0' || r > '9' })); err == nil {
			line = n
		}
		if _, after, ok := strings.Cut(rest, ": "); ok {
			msg = after
		}
	}
	if errors.Is(err, io.EOF) {
		msg = "unexpected end of file"
	}
	return &Error{File: name, Line: line, Rule: -1, Msg: msg}
}

// ruleName is what a rule may be called: it becomes part of the policy
// operator's subject ("policy:<name>") and of every trace.
var ruleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// parseRule reads one rule's fields and checks its effect.
func parseRule(file string, i int, n *yaml.Node) (*rule, error) {
	r := &rule{file: file, index: i, line: n.Line}
	if n.Kind != yaml.MappingNode {
		return nil, r.fail("", n.Line, "a rule is a mapping with name, when and effect")
	}
	var when, effect *yaml.Node
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		switch k.Value {
		case "mode":
			switch {
			case v.Kind == yaml.ScalarNode && v.Value == "enforce":
			case v.Kind == yaml.ScalarNode && v.Value == "log":
				r.shadow = true
			default:
				return nil, r.fail("mode", v.Line, "%q: want enforce (the default) or log (evaluate and trace, never enforce)", clip(v.Value))
			}
		case "name":
			if v.Kind != yaml.ScalarNode || !ruleName.MatchString(v.Value) {
				return nil, r.fail("name", v.Line, "%q is not a rule name: use letters, digits, '.', '_' and '-', at most 64", clip(v.Value))
			}
			r.name = v.Value
		case "when":
			when = v
		case "effect":
			effect = v
		default:
			return nil, r.fail("", k.Line, "unknown field %q (a rule has name, when, effect and mode)", clip(k.Value))
		}
	}
	switch {
	case r.name == "":
		return nil, r.fail("name", n.Line, "every rule needs a name: traces and audit entries cite it")
	case when == nil:
		return nil, r.fail("when", n.Line, "missing: a CEL expression saying which requests the rule applies to")
	case effect == nil:
		return nil, r.fail("effect", n.Line, "missing: one of deny, require_approvals, max_ttl, auto_approve or label")
	}
	if when.Kind != yaml.ScalarNode || strings.TrimSpace(when.Value) == "" {
		return nil, r.fail("when", when.Line, "must be a CEL expression written as a string")
	}
	if len(when.Value) > MaxExpressionSize {
		return nil, r.fail("when", when.Line, "the expression is longer than %d bytes", MaxExpressionSize)
	}
	r.when = when.Value
	r.whenLine = when.Line
	if when.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		r.whenLine++ // a block scalar's text starts on the next line
	}
	if err := r.parseEffect(effect); err != nil {
		return nil, err
	}
	return r, nil
}

// parseEffect reads a rule's effect mapping.
func (r *rule) parseEffect(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		return r.fail("effect", n.Line, "must be a mapping: deny, require_approvals, max_ttl, auto_approve or label")
	}
	e := &r.effect
	var reasonLine, onDenyLine int
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		field := "effect." + k.Value
		if k.Value == "drop_actions" {
			if err := r.parseDropActions(field, v); err != nil {
				return err
			}
			continue
		}
		if v.Kind != yaml.ScalarNode {
			return r.fail(field, v.Line, "must be a single value")
		}
		switch k.Value {
		case "deny":
			b, ok := parseBool(v)
			if !ok {
				return r.fail(field, v.Line, "%q: write deny: true", clip(v.Value))
			}
			e.deny = b
		case "reason":
			if !utf8.ValidString(v.Value) || utf8.RuneCountInString(v.Value) > MaxReasonLength {
				return r.fail(field, v.Line, "must be text of at most %d characters", MaxReasonLength)
			}
			e.reason, reasonLine = strings.TrimSpace(v.Value), v.Line
		case "require_approvals":
			k, err := strconv.Atoi(v.Value)
			if err != nil || v.Tag != "!!int" || k < 2 || k > MaxApprovals {
				return r.fail(field, v.Line, "%q: want a number of distinct operators from 2 to %d", clip(v.Value), MaxApprovals)
			}
			e.requireApprovals = k
		case "max_ttl":
			d, err := time.ParseDuration(v.Value)
			if err != nil || d <= 0 {
				return r.fail(field, v.Line, "%q is not a duration (write e.g. 15m or 1h)", clip(v.Value))
			}
			if d < time.Second {
				return r.fail(field, v.Line, "%s is shorter than a second: no token could be used", d)
			}
			e.maxTTL = d
		case "auto_approve":
			b, ok := parseBool(v)
			if !ok {
				return r.fail(field, v.Line, "%q: write auto_approve: true", clip(v.Value))
			}
			e.autoApprove = b
		case "label":
			risk, err := broker.ParseRisk(v.Value)
			if err != nil {
				return r.fail(field, v.Line, "unknown label %q (want low, medium, high or critical)", clip(v.Value))
			}
			e.label = risk
		case "on_deny":
			if v.Value != broker.OnDenyRevokeParent && v.Value != broker.OnDenyQuarantineAgent {
				return r.fail(field, v.Line, "%q: want %s or %s", clip(v.Value), broker.OnDenyRevokeParent, broker.OnDenyQuarantineAgent)
			}
			e.onDeny, onDenyLine = v.Value, v.Line
		default:
			return r.fail("effect", k.Line, "unknown effect %q (want deny, require_approvals, max_ttl, auto_approve, label or drop_actions)", clip(k.Value))
		}
	}
	switch {
	case e.reason != "" && !e.deny:
		return r.fail("effect.reason", reasonLine, "a reason goes with deny: true")
	case e.onDeny != "" && !e.deny:
		return r.fail("effect.on_deny", onDenyLine, "on_deny goes with deny: true")
	case e.deny && (e.requireApprovals > 0 || e.maxTTL > 0 || e.autoApprove || e.label > 0 || len(e.dropActions) > 0):
		return r.fail("effect", n.Line, "deny stands alone (with its reason and on_deny): a denied request needs no other effect")
	case e.autoApprove && e.requireApprovals > 0:
		return r.fail("effect", n.Line, "auto_approve and require_approvals contradict each other")
	case e.autoApprove && e.label >= broker.RiskHigh:
		return r.fail("effect", n.Line, "auto_approve of a request labelled %s: only low-risk requests are approved without a person", e.label)
	case !e.deny && !e.autoApprove && e.requireApprovals == 0 && e.maxTTL == 0 && e.label == 0 && len(e.dropActions) == 0:
		return r.fail("effect", n.Line, "has no effect (deny: false and auto_approve: false do nothing; leave the rule out)")
	}
	return nil
}

// MaxDropActions bounds a drop_actions list.
const MaxDropActions = 100

// parseDropActions reads drop_actions: a list of action names (scopes or
// detail actions) removed from a request before review.
func (r *rule) parseDropActions(field string, v *yaml.Node) error {
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		return r.fail(field, v.Line, "must be a list of actions, e.g. [contents:write]")
	}
	if len(v.Content) > MaxDropActions {
		return r.fail(field, v.Line, "%d actions: at most %d", len(v.Content), MaxDropActions)
	}
	for _, a := range v.Content {
		if a.Kind != yaml.ScalarNode || strings.TrimSpace(a.Value) == "" || strings.ContainsAny(a.Value, " \t\n") ||
			!utf8.ValidString(a.Value) || len(a.Value) > 200 {
			return r.fail(field, a.Line, "%q is not an action name", clip(a.Value))
		}
		if a.Value == broker.ScopeOpenID {
			return r.fail(field, a.Line, "openid is not an action a grant can lose")
		}
		r.effect.dropActions = append(r.effect.dropActions, a.Value)
	}
	slices.Sort(r.effect.dropActions)
	r.effect.dropActions = slices.Compact(r.effect.dropActions)
	return nil
}

func parseBool(n *yaml.Node) (bool, bool) {
	if n.Tag != "!!bool" {
		return false, false
	}
	b, err := strconv.ParseBool(strings.ToLower(n.Value))
	return b, err == nil
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	return string([]rune(s)[:40]) + "…"
}

// fail returns an error at a field of the rule.
func (r *rule) fail(field string, line int, format string, args ...any) error {
	return &Error{File: r.file, Line: line, Rule: r.index, Name: r.name, Field: field, Msg: fmt.Sprintf(format, args...)}
}
