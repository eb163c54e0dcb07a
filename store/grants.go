package store

import (
	"strings"

	"github.com/writhq/writ/broker"
)

// Grant returns the grant with the given id.
func (t *tx) Grant(id string) (*broker.Grant, error) {
	v, err := t.storedValueOf(bucketGrants, kindGrant, id)
	if err != nil {
		return nil, err
	}
	return decodeGrant(id, v)
}

// PutGrant writes g and moves its index keys to match its state.
func (t *tx) PutGrant(g *broker.Grant) error {
	if g == nil {
		return broker.Errorf(broker.EINVALID, "no grant to write")
	}
	if strings.IndexByte(g.AgentID, 0) >= 0 {
		// The agent index separates the agent id from the rest with 0x00.
		return broker.Errorf(broker.EINVALID, "grant %q: agent id contains a NUL byte", g.ID)
	}
	var prev *broker.Grant
	err := t.putStored(bucketGrants, kindGrant, g.ID, encodeGrant(g), func(old []byte) (err error) {
		prev, err = decodeGrant(g.ID, old)
		return err
	})
	if err != nil {
		return err
	}
	return t.reindex(grantIndex(prev), grantIndex(g))
}

// grantIndex lists the index keys a grant holds in its state: every grant
// is in the by-creation index; an active one is also in the active index
// and the expiry index at ExpiresAt.
func grantIndex(g *broker.Grant) []indexKey {
	if g == nil {
		return nil
	}
	keys := []indexKey{{bucketGrantsByCreated, timeIDKey(g.CreatedAt, g.ID)}}
	if g.State == broker.GrantActive {
		keys = append(keys,
			indexKey{bucketGrantsActive, timeIDKey(g.CreatedAt, g.ID)},
			indexKey{bucketDue, dueKey(g.ExpiresAt, dueKindGrant, g.ID)})
	}
	return keys
}

// ForEachActiveGrant visits active grants, oldest first.
func (t *tx) ForEachActiveGrant(fn func(*broker.Grant) error) error {
	return t.forEachGrantIn(bucketGrantsActive, nil, fn)
}

// ForEachGrant visits every grant, oldest first.
func (t *tx) ForEachGrant(fn func(*broker.Grant) error) error {
	return t.forEachGrantIn(bucketGrantsByCreated, nil, fn)
}

func (t *tx) forEachGrantIn(index, prefix []byte, fn func(*broker.Grant) error) error {
	return t.forEachIndexed(index, prefix, idFromTimeIDKey, func(id string) error {
		g, err := t.Grant(id)
		if err != nil {
			return indexed(index, id, err)
		}
		return fn(g)
	})
}

// Token returns the record of the token with the given jti.
func (t *tx) Token(jti string) (*broker.Token, error) {
	v, err := t.storedValueOf(bucketTokens, kindToken, jti)
	if err != nil {
		return nil, err
	}
	return decodeToken(jti, v)
}

// PutToken writes k.
func (t *tx) PutToken(k *broker.Token) error {
	if k == nil {
		return broker.Errorf(broker.EINVALID, "no token to write")
	}
	return t.putStored(bucketTokens, kindToken, k.JTI, encodeToken(k), nil)
}

// PutRevocation writes r.
func (t *tx) PutRevocation(r *broker.Revocation) error {
	if r == nil {
		return broker.Errorf(broker.EINVALID, "no revocation to write")
	}
	return t.putStored(bucketRevocations, kindRevocation, r.ID, encodeRevocation(r), nil)
}
