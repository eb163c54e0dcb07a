package store

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/writhq/writ/broker"
)

// Issuer returns the issuer state, the zero value on a new store.
func (t *tx) Issuer() (broker.IssuerState, error) {
	b, err := t.bucket(bucketIssuer)
	if err != nil {
		return broker.IssuerState{}, err
	}
	v := b.Get(keyIssuerState)
	if v == nil {
		return broker.IssuerState{}, nil
	}
	return decodeIssuer(v)
}

// PutIssuer writes the issuer state.
func (t *tx) PutIssuer(s broker.IssuerState) error {
	return t.putStored(bucketIssuer, kindIssuer, string(keyIssuerState), encodeIssuer(s), nil)
}

// AgentState returns the agent's state, the zero value with ID set for an
// agent never seen.
func (t *tx) AgentState(id string) (broker.AgentState, error) {
	b, err := t.bucket(bucketAgents)
	if err != nil {
		return broker.AgentState{ID: id}, err
	}
	v := b.Get([]byte(id))
	if v == nil {
		return broker.AgentState{ID: id}, nil
	}
	return decodeAgent(id, v)
}

// PutAgentState writes an agent's state.
func (t *tx) PutAgentState(s broker.AgentState) error {
	return t.putStored(bucketAgents, kindAgent, s.ID, encodeAgent(s), nil)
}

// ForEachAgentState visits the state of every agent seen, by id.
func (t *tx) ForEachAgentState(fn func(broker.AgentState) error) error {
	b, err := t.bucket(bucketAgents)
	if err != nil {
		return err
	}
	return t.scan(b, nil, func(k, v []byte) (bool, error) {
		s, err := decodeAgent(string(k), v)
		if err != nil {
			return false, err
		}
		return true, fn(s)
	})
}

// SigningKeys returns every signing key, oldest first.
func (t *tx) SigningKeys() ([]broker.SigningKey, error) {
	b, err := t.bucket(bucketSigningKeys)
	if err != nil {
		return nil, err
	}
	var keys []broker.SigningKey
	err = t.scan(b, nil, func(k, v []byte) (bool, error) {
		key, err := decodeSigningKey(string(k), v)
		if err != nil {
			return false, err
		}
		keys = append(keys, key)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b broker.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return keys, nil
}

// PutSigningKey writes a signing key, replacing one with the same kid.
func (t *tx) PutSigningKey(k broker.SigningKey) error {
	return t.putStored(bucketSigningKeys, kindSigningKey, k.ID, encodeSigningKey(k), nil)
}

// DeleteSigningKey removes a signing key; removing one that is not there
// is not an error, so a retried rotation succeeds.
func (t *tx) DeleteSigningKey(kid string) error {
	b, err := t.writeBucket(bucketSigningKeys)
	if err != nil {
		return err
	}
	if kid == "" {
		return nil
	}
	if err := b.Delete([]byte(kid)); err != nil {
		return fmt.Errorf("delete signing key %q: %w", kid, err)
	}
	return nil
}
