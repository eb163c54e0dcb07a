package demo

import (
	"net/http"
	"time"

	"github.com/writhq/writ/broker"
)

// call is one request an agent makes to the resource server with its token.
type call struct {
	method string
	path   string // below the resource's URI
}

// script is a plausible task: what the agent asks for and what it then does.
type script struct {
	intent string
	res    string
	scopes []string
	// repo, when set, adds an authorization detail scoped to that
	// repository with the scopes as actions.
	repo  string
	ttl   time.Duration
	calls []call
	// followOn is asked for while the task runs, as a follow-on of it.
	followOn *script
	// burst submits this many near-identical requests at once (push-bombing).
	burst int
	// policyDenied says the demo policy refuses this request at submission.
	policyDenied bool
}

func (s *script) details(resURI string) []broker.AuthorizationDetail {
	if s.repo == "" {
		return nil
	}
	return []broker.AuthorizationDetail{{
		Type: broker.TaskDetailType, Locations: []string{resURI + "/repos/" + s.repo},
		Actions: s.scopes, Identifier: s.repo,
	}}
}

var (
	get  = http.MethodGet
	post = http.MethodPost
)

// scripts are the tasks each agent cycles through.
var scripts = map[string][]script{
	"release-bot": {
		{intent: "Open a PR fixing CVE-2026-1234 (bump libxml2) in acme/web", res: ResGit, repo: "acme/web",
			scopes: []string{"contents:read", "contents:write", "pulls:write"}, ttl: 30 * time.Minute,
			calls: []call{{get, "/repos/acme/web/contents"}, {post, "/repos/acme/web/branches"}, {post, "/repos/acme/web/pulls"}},
			followOn: &script{intent: "Re-run the failing CI workflow on the CVE-2026-1234 PR", res: ResGit,
				scopes: []string{"workflows:write"}, ttl: 10 * time.Minute, calls: []call{{post, "/repos/acme/web/workflows/ci/runs"}}}},
		{intent: "Tag release v2.14.0 of acme/api and open the changelog PR", res: ResGit, repo: "acme/api",
			scopes: []string{"contents:read", "contents:write", "pulls:write"}, ttl: 20 * time.Minute,
			calls: []call{{get, "/repos/acme/api/contents"}, {post, "/repos/acme/api/tags"}, {post, "/repos/acme/api/pulls"}}},
	},
	"docs-bot": {
		{intent: "Read acme/docs to answer a question about the deploy runbook", res: ResGit, repo: "acme/docs",
			scopes: []string{"contents:read"}, ttl: 10 * time.Minute,
			calls: []call{{get, "/repos/acme/docs/contents"}, {get, "/repos/acme/docs/contents"}}},
		{intent: "Open a PR fixing broken links in acme/docs", res: ResGit, repo: "acme/docs",
			scopes: []string{"contents:read", "pulls:write"}, ttl: 15 * time.Minute,
			calls: []call{{get, "/repos/acme/docs/contents"}, {post, "/repos/acme/docs/pulls"}}},
	},
	"support-agent": {
		// It asks for 15 minutes; the demo policy caps refunds at 10.
		{intent: "Refund order #8812 ($42.00) for customer C-1932: parcel lost in transit", res: ResBilling,
			scopes: []string{"customers:read", "refunds:create"}, ttl: 15 * time.Minute,
			calls: []call{{get, "/customers/C-1932"}, {post, "/refunds"}}},
		{intent: "Look up customer C-2211's last three invoices for a billing question", res: ResBilling,
			scopes: []string{"customers:read"}, ttl: 5 * time.Minute,
			calls: []call{{get, "/customers/C-2211"}, {get, "/customers/C-2211/invoices"}}},
	},
	"analyst": {
		{intent: "Query the customers table for the weekly churn report", res: ResWarehouse,
			scopes: []string{"tables:read"}, ttl: 20 * time.Minute,
			calls: []call{{get, "/tables/customers/query"}, {get, "/tables/subscriptions/query"}},
			followOn: &script{intent: "Export the churn report to the finance share", res: ResWarehouse,
				scopes: []string{"tables:export"}, ttl: 5 * time.Minute, calls: []call{{post, "/exports"}}}},
	},
	"rotator": {
		{intent: "Rotate the payments-db password (scheduled, 90-day policy)", res: ResVault,
			scopes: []string{"secrets:rotate"}, ttl: 5 * time.Minute,
			calls: []call{{post, "/secrets/payments-db/rotate"}}},
	},
	"triage-bot": {
		// Its intent needs read access; it asks for write and secrets too,
		// which the demo policy refuses before anyone is asked.
		{intent: "Label new issues in acme/web", res: ResGit, repo: "acme/web",
			scopes: []string{"contents:read", "contents:write", "secrets:read"}, ttl: 15 * time.Minute,
			calls:        []call{{get, "/repos/acme/web/contents"}, {get, "/repos/acme/web/secrets"}},
			policyDenied: true},
		// Then it floods the queue asking for write access.
		{intent: "Label new issues in acme/web", res: ResGit, repo: "acme/web",
			scopes: []string{"contents:read", "contents:write"}, ttl: 15 * time.Minute, burst: 6,
			calls: []call{{get, "/repos/acme/web/contents"}}},
	},
}
