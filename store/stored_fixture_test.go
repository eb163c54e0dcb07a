package store

import (
	"time"

	"github.com/writhq/writ/broker"
)

// The records of stored_compat_test.go as writ knew them when it wrote
// version 0: every field set, so each of version 0's JSON names is read.
var (
	fx0   = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	fxBob = broker.Operator{Issuer: "https://idp.example", Subject: "bob", Email: "bob@example.com", EmailVerified: true,
		Name: "Bob", AuthTime: fx0.Add(-time.Hour), Dev: true}
	fxAsked = broker.Terms{
		Scopes: []string{"repo:read", "repo:write"},
		Details: []broker.AuthorizationDetail{{Type: broker.TaskDetailType, Locations: []string{"https://git.example/a"},
			Actions: []string{"repo:read", "repo:write"}, Datatypes: []string{"code"}, Identifier: "repo-1",
			Privileges: []string{"push"}, Intent: "fix the build"}},
		Resource: "https://git.example",
		TTL:      90 * time.Minute,
	}
	fxGranted = broker.Terms{Scopes: []string{"repo:read"}, Resource: "https://git.example", TTL: 15 * time.Minute}
	fxMark    = broker.EpochMark{Epoch: 7, At: fx0.Add(-2 * time.Hour), By: fxBob, Reason: "rotate"}
)

func fixtureRequest() *broker.TaskRequest {
	return &broker.TaskRequest{
		ID: "r1", AgentID: "agent-1", LoginHint: "oncall@example.com", Intent: "fix the build → ship it",
		Terms: fxAsked, ParentID: "r0", State: broker.RequestPending,
		CreatedAt: fx0, Deadline: fx0.Add(5 * time.Minute), ClosedAt: fx0.Add(time.Minute),
		DecisionID: "d1", GrantID: "g1", Interval: 5 * time.Second, LastPoll: fx0.Add(10 * time.Second),
		Policy: &broker.PolicyResult{Verdict: "review", Risk: broker.RiskHigh, Trace: []string{"rule a → label high"},
			Rule: "a", Reason: "writes", AutoApprove: true, MaxTTL: 30 * time.Minute, RequireApprovals: 2},
		Approvals: []broker.Approval{{Operator: fxBob, At: fx0.Add(2 * time.Minute), Kind: broker.DecisionNarrow,
			Terms: fxGranted, Reason: "read only"}},
	}
}

func fixtureDecision() *broker.Decision {
	g := fxGranted
	return &broker.Decision{ID: "d1", RequestID: "r1", Kind: broker.DecisionNarrow, Operator: fxBob, Reason: "read only",
		At: fx0.Add(3 * time.Minute), Requested: fxAsked, Granted: &g}
}

func fixtureGrant() *broker.Grant {
	by := fxBob
	return &broker.Grant{
		ID: "g1", RequestID: "r1", DecisionID: "d1", AgentID: "agent-1", ParentID: "g0", Children: []string{"g2", "g3"},
		Intent: "fix the build", Terms: fxGranted, Approver: fxBob, State: broker.GrantActive,
		CreatedAt: fx0, ExpiresAt: fx0.Add(15 * time.Minute), EndedAt: fx0.Add(20 * time.Minute), EndReason: "done",
		EndedBy: &by, EndKind: broker.EndRevokedGrant, EndParent: "g0", Epoch: 3, AgentEpoch: 2,
		TokenJTI: "jti-1", JKT: "thumb", Uses: 4, LastUse: fx0.Add(time.Minute), RefusedAfterEnd: 5, AcceptedAfterEnd: 6,
	}
}

func fixtureToken() *broker.Token {
	return &broker.Token{JTI: "jti-1", GrantID: "g1", AgentID: "agent-1", KeyID: "kid-1",
		IssuedAt: fx0, ExpiresAt: fx0.Add(15 * time.Minute), JKT: "thumb"}
}

func fixtureRevocation() *broker.Revocation {
	return &broker.Revocation{ID: "v1", Scope: broker.RevokeAgent, Target: "agent-1", Operator: fxBob, Reason: "leak",
		At: fx0.Add(time.Hour), Epoch: 8, Freeze: true, Grants: 2}
}

func fixtureIssuer() broker.IssuerState {
	by := fxBob
	return broker.IssuerState{Frozen: true, FrozenAt: fx0, FrozenBy: &by, FrozenWhy: "incident", Epoch: 7,
		EpochAt: fx0.Add(-2 * time.Hour), Epochs: []broker.EpochMark{fxMark}}
}

func fixtureAgent() broker.AgentState {
	return broker.AgentState{ID: "agent-1", Epoch: 7, EpochAt: fx0.Add(-2 * time.Hour), Epochs: []broker.EpochMark{fxMark},
		Quarantined: true, LastSeen: fx0, Throttled: 9}
}

func fixtureSigningKey() broker.SigningKey {
	return broker.SigningKey{ID: "kid-1", Alg: "ES256", Private: []byte(`{"kty":"EC"}`), CreatedAt: fx0,
		RetiredAt: fx0.Add(time.Hour), RemoveAt: fx0.Add(2 * time.Hour)}
}

func fixtureSignal() *broker.Signal {
	return &broker.Signal{Seq: 1, Kind: broker.SignalSessionRevoked, At: fx0, GrantID: "g1", JTI: "jti-1", AgentID: "agent-1",
		All: true, Epoch: 8, Audience: "https://git.example", InitiatingEntity: "admin", Reason: "leak",
		Claims: map[string]any{"scope": "repo:read", "n": 2.0}}
}
