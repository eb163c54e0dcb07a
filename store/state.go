package store

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/writhq/writ/broker"
)

// Issuer returns the issuer state, the zero value on a new store.
func (t *tx) Issuer() (broker.IssuerState, error) {
	var s broker.IssuerState
	b, err := t.bucket(bucketIssuer)
	if err != nil {
		return s, err
	}
	_, err = getJSON(b, "issuer state", keyIssuerState, &s)
	return s, err
}

// PutIssuer writes the issuer state.
func (t *tx) PutIssuer(s broker.IssuerState) error {
	b, err := t.writeBucket(bucketIssuer)
	if err != nil {
		return err
	}
	return putJSON(b, "issuer state", keyIssuerState, s)
}

// AgentState returns the agent's state, the zero value with ID set for an
// agent never seen.
func (t *tx) AgentState(id string) (broker.AgentState, error) {
	s := broker.AgentState{ID: id}
	b, err := t.bucket(bucketAgents)
	if err != nil {
		return s, err
	}
	if _, err := getJSON(b, "agent state", []byte(id), &s); err != nil {
		return broker.AgentState{ID: id}, err
	}
	return s, nil
}

// PutAgentState writes an agent's state.
func (t *tx) PutAgentState(s broker.AgentState) error {
	_, err := t.put(bucketAgents, "agent state", s.ID, s, nil)
	return err
}

// ForEachAgentState visits the state of every agent seen, by id.
func (t *tx) ForEachAgentState(fn func(broker.AgentState) error) error {
	b, err := t.bucket(bucketAgents)
	if err != nil {
		return err
	}
	return t.scan(b, nil, func(k, v []byte) (bool, error) {
		var s broker.AgentState
		if err := json.Unmarshal(v, &s); err != nil {
			return false, fmt.Errorf("decode agent state %q: %w", k, err)
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
		var key broker.SigningKey
		if err := json.Unmarshal(v, &key); err != nil {
			return false, fmt.Errorf("decode signing key %q: %w", k, err)
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
	_, err := t.put(bucketSigningKeys, "signing key", k.ID, k, nil)
	return err
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
