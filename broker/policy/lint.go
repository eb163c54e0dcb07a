package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	"github.com/writhq/writ/broker"
)

// Finding is something `writ policy check` reports about a policy that
// loads: a rule that can never matter, or one that is not what it seems.
type Finding struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Rule string `json:"rule"`
	Msg  string `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: rule %s: %s", f.File, f.Line, f.Rule, f.Msg)
}

// Lint looks for rules that load but can never do what they say:
//   - a rule whose when is a constant false never matches;
//   - an enforced deny whose when is a constant true refuses everything, so
//     every later rule is unreachable;
//   - an auto_approve that can never apply: labelled above low, or behind
//     a rule that requires approvals (or denies) for every request;
//   - overlapping denies: a deny whose conditions include all of an
//     earlier deny's, so the earlier one always decides first and the
//     later one's reason and on_deny never take effect.
func (p *Policy) Lint() []Finding {
	var out []Finding
	add := func(r *rule, format string, args ...any) {
		out = append(out, Finding{File: p.name, Line: r.line, Rule: r.name, Msg: fmt.Sprintf(format, args...)})
	}
	var denyAll, approvalsAll *rule
	for i, r := range p.rules {
		c, constant := r.constant()
		if constant && !c {
			add(r, "when is always false: the rule never matches")
			continue
		}
		if r.shadow {
			continue // shadow rules change nothing, so nothing they do is unreachable
		}
		if denyAll != nil {
			add(r, "unreachable: rule %s denies every request before it", denyAll.name)
			continue
		}
		e := r.effect
		if e.autoApprove {
			switch {
			case e.label > broker.RiskLow:
				add(r, "auto_approve can never apply: the rule labels the request %s, and only low-risk requests are approved without a person", e.label)
			case approvalsAll != nil:
				add(r, "auto_approve can never apply: rule %s requires %d approvals for every request", approvalsAll.name, approvalsAll.effect.requireApprovals)
			}
		}
		if e.deny {
			for _, earlier := range p.rules[:i] {
				if earlier.shadow || !earlier.effect.deny {
					continue
				}
				if subset(earlier.conjuncts(), r.conjuncts()) {
					add(r, "overlaps deny rule %s: every request this rule denies, %s denies first, so this rule's reason and on_deny never take effect", earlier.name, earlier.name)
					break
				}
			}
		}
		if constant && c {
			switch {
			case e.deny:
				denyAll = r
				if i < len(p.rules)-1 {
					add(r, "when is always true: every request is denied and the rules after it are unreachable")
				}
			case e.requireApprovals > 0 && (approvalsAll == nil || e.requireApprovals > approvalsAll.effect.requireApprovals):
				approvalsAll = r
			}
		}
	}
	// An auto_approve placed before a rule that requires approvals for
	// every request can never apply either.
	if approvalsAll != nil && denyAll == nil {
		for _, r := range p.rules {
			if !r.shadow && r.effect.autoApprove && r.effect.label <= broker.RiskLow && r.index < approvalsAll.index {
				add(r, "auto_approve can never apply: rule %s requires %d approvals for every request", approvalsAll.name, approvalsAll.effect.requireApprovals)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return a.Line - b.Line })
	return out
}

// constant reports whether the rule's expression has the same value
// whatever the request: it is evaluated with every variable unknown, and
// a result that is still a bool did not depend on them ("false && …").
func (r *rule) constant() (value, ok bool) {
	env, err := newEnv()
	if err != nil {
		return false, false
	}
	a, iss := env.Compile(r.when)
	if iss != nil && iss.Err() != nil {
		return false, false
	}
	prg, err := env.Program(a, cel.EvalOptions(cel.OptPartialEval), cel.CostLimit(CostLimit))
	if err != nil {
		return false, false
	}
	patterns := make([]*cel.AttributePatternType, 0, len(variables))
	for _, v := range variables {
		patterns = append(patterns, cel.AttributePattern(v))
	}
	vars, err := cel.PartialVars(map[string]any{}, patterns...)
	if err != nil {
		return false, false
	}
	out, _, err := prg.ContextEval(context.Background(), vars)
	if err != nil || types.IsUnknown(out) {
		return false, false
	}
	b, isBool := out.(types.Bool)
	return bool(b), isBool
}

// conjuncts are the expression's top-level && operands, written out in
// a normal form, so two rules can be compared condition by condition.
func (r *rule) conjuncts() []string {
	env, err := newEnv()
	if err != nil {
		return nil
	}
	a, iss := env.Parse(r.when)
	if iss != nil && iss.Err() != nil {
		return nil
	}
	var parts []celast.Expr
	var split func(e celast.Expr)
	split = func(e celast.Expr) {
		if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
			for _, arg := range e.AsCall().Args() {
				split(arg)
			}
			return
		}
		parts = append(parts, e)
	}
	split(a.NativeRep().Expr())
	var out []string
	for _, e := range parts {
		s, err := cel.ExprToString(e, a.NativeRep().SourceInfo())
		if err != nil {
			return nil
		}
		out = append(out, strings.Join(strings.Fields(s), " "))
	}
	return out
}

// subset reports whether every element of a is in b (a non-empty a).
func subset(a, b []string) bool {
	if len(a) == 0 {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
