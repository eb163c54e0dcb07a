package broker

import (
	"fmt"
	"net/url"
	"strings"
)

// OwnerMatch decides whether op is the owner of an agent whose configured
// owner is owner, failing closed. owner is either "ISSUER|SUBJECT" (the
// operator's stable OIDC identity, compared exactly) or an email address,
// which identifies an operator only when the identity provider marks it
// verified. unknown is non-empty, saying why, when op's identity cannot be
// compared with the owner: such an operator must not approve, since they
// might be the owner.
func OwnerMatch(owner string, op Operator) (owns bool, unknown string) {
	owner = strings.TrimSpace(owner)
	switch {
	case owner == "":
		return false, ""
	case op.Issuer == System.Issuer:
		return false, "" // policy and writ itself are nobody's person
	case strings.Contains(owner, "|"):
		return owner == op.ID(), ""
	case CheckOwner(owner) != "":
		return false, "the agent's owner " + owner + " is neither an email nor issuer|subject"
	case op.Email == "":
		return false, "your sign-in carries no email, and the agent's owner is named by email (" + owner + ")"
	case !op.EmailVerified:
		return false, "your identity provider does not mark your email " + op.Email + " as verified, and the agent's owner is named by email (" + owner + ")"
	}
	return strings.EqualFold(owner, strings.TrimSpace(op.Email)), ""
}

// CheckOwner says what is wrong with a configured owner, or "": it must be
// empty, an email address, or ISSUER|SUBJECT, since nothing else can be
// compared with a signed-in operator.
func CheckOwner(owner string) string {
	switch {
	case owner == "":
		return ""
	case strings.Contains(owner, "|"):
		iss, sub, _ := strings.Cut(owner, "|")
		if u, err := url.Parse(iss); err != nil || !u.IsAbs() || sub == "" {
			return fmt.Sprintf("owner %q: write issuer|subject as the operator's OIDC issuer URL and subject, e.g. https://idp.example.com|248289761001", owner)
		}
		return ""
	case strings.Count(owner, "@") == 1 && !strings.ContainsAny(owner, " \t<>"):
		return ""
	}
	return fmt.Sprintf("owner %q names nobody writ can recognise: write an email address the identity provider verifies, or issuer|subject", owner)
}

// notOwner refuses an operator approving a request of an agent they own,
// or whose ownership cannot be told: consent must come from someone other
// than the agent's owner.
func (s *Service) notOwner(op Operator, agentID string) error {
	a, ok := s.AgentConfig(agentID)
	if !ok {
		return nil
	}
	owns, unknown := OwnerMatch(a.Owner, op)
	switch {
	case unknown != "":
		return Errorf(EFORBIDDEN, "writ cannot tell whether you own agent %s: %s. Another operator whose provider verifies their email "+
			"(and who is not %s) can approve it; or name the owner as issuer|subject in the configuration", agentID, unknown, a.Owner)
	case owns:
		return Errorf(EFORBIDDEN, "%s owns agent %s: another operator must approve its requests", op.Display(), agentID)
	}
	return nil
}
