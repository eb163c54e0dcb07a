package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"

	"github.com/writhq/writ/broker"
)

// The fields of the CEL variables. They are maps, so CEL's type checker
// cannot see a misspelt field; compile checks selections against these
// lists instead, so `request.scope` is an error at load, not a rule that
// silently fails (and so matches) on every request.
var (
	requestFields = []string{"agent", "intent", "scopes", "actions", "resource", "ttl_seconds", "details", "follow_on", "login_hint"}
	detailFields  = []string{"type", "actions", "locations", "identifier"}
	agentFields   = []string{"id", "name", "owner", "recent", "active_grants"}
	parentFields  = []string{"scopes", "resource", "ttl_seconds"}
	recentFields  = []string{"hour", "day"}
	countFields   = []string{"requests", "denials", "refusals", "revocations"}
)

// variables are the names the expressions may read.
var variables = []string{"request", "agent", "parent", "now", "agent.recent", "agent.active_grants"}

// nestedFields are the fields of maps inside the variables, by the path
// that selects them.
var nestedFields = map[string][]string{
	"agent.recent":      recentFields,
	"agent.recent.hour": countFields,
	"agent.recent.day":  countFields,
}

// newEnv is the CEL environment every when expression is compiled in:
// standard CEL, no extensions, and four variables.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.VariableWithDoc("request", cel.MapType(cel.StringType, cel.DynType),
			"the request: "+strings.Join(requestFields, ", ")),
		cel.VariableWithDoc("agent", cel.MapType(cel.StringType, cel.StringType),
			"the agent: "+strings.Join(agentFields, ", ")),
		// CEL resolves agent.recent and agent.active_grants as qualified
		// names before it selects from agent, so they can have their own
		// (int) types while agent's other fields stay strings.
		cel.VariableWithDoc("agent.recent", cel.MapType(cel.StringType, cel.MapType(cel.StringType, cel.IntType)),
			"the agent's counts over the last hour and day: "+strings.Join(countFields, ", ")),
		cel.VariableWithDoc("agent.active_grants", cel.IntType, "how many grants the agent holds now"),
		cel.VariableWithDoc("parent", cel.MapType(cel.StringType, cel.DynType),
			"the parent grant of a follow-on ("+strings.Join(parentFields, ", ")+"); empty when there is none"),
		cel.VariableWithDoc("now", cel.TimestampType, "the time the request arrived"),
	)
}

// compile parses and type-checks the rule's expression and plans it with
// a cost limit.
func (r *rule) compile(env *cel.Env) error {
	ast, iss := env.Compile(r.when)
	if iss != nil && iss.Err() != nil {
		errs := iss.Errors()
		if len(errs) == 0 {
			return r.fail("when", r.whenLine, "%s", iss.Err())
		}
		e := errs[0]
		return r.fail("when", r.whenLine+max(e.Location.Line()-1, 0), "column %d: %s", e.Location.Column()+1, e.Message)
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) {
		hint := ""
		if t.IsExactType(cel.DynType) {
			hint = " (compare it with a value, e.g. request.follow_on == true)"
		}
		return r.fail("when", r.whenLine, "must be a bool expression, but its type is %s%s", t, hint)
	}
	if err := r.checkFields(ast.NativeRep()); err != nil {
		return err
	}
	r.loops = len(celast.MatchDescendants(celast.NavigateAST(ast.NativeRep()), celast.KindMatcher(celast.ComprehensionKind))) > 0
	prg, err := env.Program(ast, cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return r.fail("when", r.whenLine, "%v", err)
	}
	r.prg = prg
	return nil
}

// checkFields refuses selections of fields the variables do not have:
// request.x, agent.x, parent.x, and d.x where d ranges over request.details.
func (r *rule) checkFields(a *celast.AST) error {
	root := celast.NavigateAST(a)
	known := map[string][]string{"request": requestFields, "agent": agentFields, "parent": parentFields}
	check := func(sel celast.NavigableExpr, names map[string][]string) error {
		s := sel.AsSelect()
		path, ok := selectPath(s.Operand())
		if !ok {
			return nil
		}
		fields, ok := names[path]
		if !ok {
			fields, ok = nestedFields[path]
		}
		if !ok || slices.Contains(fields, s.FieldName()) {
			return nil
		}
		loc := a.SourceInfo().GetStartLocation(sel.ID())
		return r.fail("when", r.whenLine+max(loc.Line()-1, 0), "column %d: %s has no field %q (it has %s)",
			loc.Column()+1, path, s.FieldName(), strings.Join(fields, ", "))
	}
	for _, sel := range celast.MatchDescendants(root, celast.KindMatcher(celast.SelectKind)) {
		if err := check(sel, known); err != nil {
			return err
		}
	}
	// Comprehensions over request.details bind a variable to each detail.
	for _, c := range celast.MatchDescendants(root, celast.KindMatcher(celast.ComprehensionKind)) {
		comp := c.AsComprehension()
		rng := comp.IterRange()
		if rng.Kind() != celast.SelectKind || rng.AsSelect().FieldName() != "details" ||
			rng.AsSelect().Operand().Kind() != celast.IdentKind || rng.AsSelect().Operand().AsIdent() != "request" ||
			comp.HasIterVar2() {
			continue
		}
		names := map[string][]string{comp.IterVar(): detailFields}
		for _, sel := range celast.MatchDescendants(c, celast.KindMatcher(celast.SelectKind)) {
			if err := check(sel, names); err != nil {
				return err
			}
		}
	}
	return nil
}

// selectPath writes an identifier or a chain of selections on one
// ("agent.recent.hour"); false for anything else.
func selectPath(e celast.Expr) (string, bool) {
	switch e.Kind() {
	case celast.IdentKind:
		return e.AsIdent(), true
	case celast.SelectKind:
		op, ok := selectPath(e.AsSelect().Operand())
		return op + "." + e.AsSelect().FieldName(), ok
	}
	return "", false
}

// activation is what the expressions see of a request. Lists are copies,
// so nothing an expression does can reach the broker's records.
func activation(in broker.PolicyInput) map[string]any {
	return activationOf(in, in.Request.Terms)
}

// activationOf is the activation with the request's terms as policy
// narrowed them (drop_actions).
func activationOf(in broker.PolicyInput, terms broker.Terms) map[string]any {
	req := in.Request
	details := make([]any, 0, len(terms.Details))
	for _, d := range terms.Details {
		details = append(details, map[string]any{
			"type": d.Type, "actions": strs(d.Actions), "locations": strs(d.Locations), "identifier": d.Identifier,
		})
	}
	request := map[string]any{
		"agent":       req.AgentID,
		"intent":      req.Intent,
		"scopes":      strs(terms.ResourceScopes()),
		"actions":     strs(terms.Actions()),
		"resource":    terms.Resource,
		"ttl_seconds": int64(terms.TTL / time.Second),
		"details":     details,
		"follow_on":   req.ParentID != "",
		"login_hint":  req.LoginHint,
	}
	var h broker.AgentHistory
	if in.History != nil {
		h = *in.History
	}
	agent := map[string]any{"id": req.AgentID, "name": "", "owner": ""}
	if in.Agent != nil {
		agent["id"], agent["name"], agent["owner"] = in.Agent.ID, in.Agent.Name, in.Agent.Owner
	}
	parent := map[string]any{}
	if in.Parent != nil {
		parent = map[string]any{
			"scopes":      strs(in.Parent.Terms.ResourceScopes()),
			"resource":    in.Parent.Terms.Resource,
			"ttl_seconds": int64(in.Parent.Terms.TTL / time.Second),
		}
	}
	return map[string]any{"request": request, "agent": agent, "parent": parent, "now": in.Now.UTC(),
		"agent.recent":        map[string]any{"hour": counts(h.Hour), "day": counts(h.Day)},
		"agent.active_grants": int64(h.ActiveGrants),
	}
}

// counts is one window of an agent's history as a CEL map of ints.
func counts(c broker.HistoryCounts) map[string]int64 {
	return map[string]int64{"requests": int64(c.Requests), "denials": int64(c.Denials),
		"refusals": int64(c.Refusals), "revocations": int64(c.Revocations)}
}

// strs copies a list as []any, so every list has the same CEL type.
func strs(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

// describe writes an effect the way traces and the README name it.
func (e effect) describe() string {
	var parts []string
	if e.deny {
		parts = append(parts, "deny")
	}
	if e.requireApprovals > 0 {
		parts = append(parts, fmt.Sprintf("require_approvals %d", e.requireApprovals))
	}
	if e.maxTTL > 0 {
		parts = append(parts, "max_ttl "+shortDuration(e.maxTTL))
	}
	if e.label > 0 {
		parts = append(parts, "label "+e.label.String())
	}
	if e.autoApprove {
		parts = append(parts, "auto_approve")
	}
	if len(e.dropActions) > 0 {
		parts = append(parts, "drop_actions "+strings.Join(e.dropActions, " "))
	}
	if e.onDeny != "" {
		parts = append(parts, "on_deny "+e.onDeny)
	}
	return strings.Join(parts, ", ")
}

// shortDuration writes 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
