package store

import (
	"time"

	"github.com/writhq/writ/broker"
)

// storedIssuer is a broker.IssuerState as stored (kind 'i').
type storedIssuer struct {
	Frozen    bool              `json:"frozen"`
	FrozenAt  time.Time         `json:"frozen_at"`
	FrozenBy  *storedOperator   `json:"frozen_by"`
	FrozenWhy string            `json:"frozen_why"`
	Epoch     uint64            `json:"epoch"`
	EpochAt   time.Time         `json:"epoch_at"`
	Epochs    []storedEpochMark `json:"epochs"`
}

func storedIssuerOf(x broker.IssuerState) storedIssuer {
	return storedIssuer{x.Frozen, x.FrozenAt, storedOperatorPtr(x.FrozenBy), x.FrozenWhy, x.Epoch, x.EpochAt, storedEpochMarksOf(x.Epochs)}
}

func (s *storedIssuer) issuer() broker.IssuerState {
	return broker.IssuerState{Frozen: s.Frozen, FrozenAt: s.FrozenAt, FrozenBy: s.FrozenBy.operatorPtr(), FrozenWhy: s.FrozenWhy,
		Epoch: s.Epoch, EpochAt: s.EpochAt, Epochs: epochMarks(s.Epochs)}
}

func (s *storedIssuer) encodeV1(e *encoder) {
	e.bool(s.Frozen)
	e.time(s.FrozenAt)
	encodeOptionalOperator(e, s.FrozenBy)
	e.string(s.FrozenWhy)
	e.uint(s.Epoch)
	e.time(s.EpochAt)
	encodeEpochMarks(e, s.Epochs)
}

func (s *storedIssuer) decodeV1(d *decoder) {
	s.Frozen = d.bool()
	s.FrozenAt = d.time()
	s.FrozenBy = decodeOptionalOperator(d)
	s.FrozenWhy = d.string()
	s.Epoch = d.uint()
	s.EpochAt = d.time()
	s.Epochs = decodeEpochMarks(d)
}

// read fills s from data, the value of issuer id in any version.
func (s *storedIssuer) read(id string, data []byte) error {
	d, v0, err := openStored(kindIssuer, id, data)
	switch {
	case err != nil:
		return err
	case v0:
		return decodeV0(kindIssuer, id, data, s)
	}
	s.decodeV1(&d)
	return d.close()
}

func encodeIssuer(x broker.IssuerState) []byte {
	s := storedIssuerOf(x)
	e := newStoredEncoder(kindIssuer)
	s.encodeV1(e)
	return e.done()
}

func decodeIssuer(data []byte) (broker.IssuerState, error) {
	var s storedIssuer
	if err := s.read(string(keyIssuerState), data); err != nil {
		return broker.IssuerState{}, err
	}
	return s.issuer(), nil
}

// storedAgent is a broker.AgentState as stored (kind 'a').
type storedAgent struct {
	ID          string            `json:"id"`
	Epoch       uint64            `json:"epoch"`
	EpochAt     time.Time         `json:"epoch_at"`
	Epochs      []storedEpochMark `json:"epochs"`
	Quarantined bool              `json:"quarantined"`
	LastSeen    time.Time         `json:"last_seen"`
	Throttled   int64             `json:"throttled"`
}

func storedAgentOf(x broker.AgentState) storedAgent {
	return storedAgent{x.ID, x.Epoch, x.EpochAt, storedEpochMarksOf(x.Epochs), x.Quarantined, x.LastSeen, x.Throttled}
}

func (s *storedAgent) agent() broker.AgentState {
	return broker.AgentState{ID: s.ID, Epoch: s.Epoch, EpochAt: s.EpochAt, Epochs: epochMarks(s.Epochs),
		Quarantined: s.Quarantined, LastSeen: s.LastSeen, Throttled: s.Throttled}
}

func (s *storedAgent) encodeV1(e *encoder) {
	e.string(s.ID)
	e.uint(s.Epoch)
	e.time(s.EpochAt)
	encodeEpochMarks(e, s.Epochs)
	e.bool(s.Quarantined)
	e.time(s.LastSeen)
	e.int(s.Throttled)
}

func (s *storedAgent) decodeV1(d *decoder) {
	s.ID = d.string()
	s.Epoch = d.uint()
	s.EpochAt = d.time()
	s.Epochs = decodeEpochMarks(d)
	s.Quarantined = d.bool()
	s.LastSeen = d.time()
	s.Throttled = d.int()
}

// read fills s from data, the value of agent id in any version.
func (s *storedAgent) read(id string, data []byte) error {
	d, v0, err := openStored(kindAgent, id, data)
	switch {
	case err != nil:
		return err
	case v0:
		return decodeV0(kindAgent, id, data, s)
	}
	s.decodeV1(&d)
	return d.close()
}

func encodeAgent(x broker.AgentState) []byte {
	s := storedAgentOf(x)
	e := newStoredEncoder(kindAgent)
	s.encodeV1(e)
	return e.done()
}

// decodeAgent reads the state of agent id. A version-0 value without an
// id keeps the id it is stored under.
func decodeAgent(id string, data []byte) (broker.AgentState, error) {
	s := storedAgent{ID: id}
	if err := s.read(id, data); err != nil {
		return broker.AgentState{ID: id}, err
	}
	return s.agent(), nil
}

// storedSigningKey is a broker.SigningKey as stored (kind 'k').
type storedSigningKey struct {
	ID        string    `json:"kid"`
	Alg       string    `json:"alg"`
	Private   []byte    `json:"private"`
	CreatedAt time.Time `json:"created_at"`
	RetiredAt time.Time `json:"retired_at"`
	RemoveAt  time.Time `json:"remove_at"`
}

func storedSigningKeyOf(k broker.SigningKey) storedSigningKey {
	return storedSigningKey{k.ID, k.Alg, k.Private, k.CreatedAt, k.RetiredAt, k.RemoveAt}
}

func (s *storedSigningKey) signingKey() broker.SigningKey {
	return broker.SigningKey{ID: s.ID, Alg: s.Alg, Private: s.Private, CreatedAt: s.CreatedAt, RetiredAt: s.RetiredAt, RemoveAt: s.RemoveAt}
}

func (s *storedSigningKey) encodeV1(e *encoder) {
	e.string(s.ID)
	e.string(s.Alg)
	e.bytes(s.Private)
	e.time(s.CreatedAt)
	e.time(s.RetiredAt)
	e.time(s.RemoveAt)
}

func (s *storedSigningKey) decodeV1(d *decoder) {
	s.ID = d.string()
	s.Alg = d.string()
	s.Private = d.bytes()
	s.CreatedAt = d.time()
	s.RetiredAt = d.time()
	s.RemoveAt = d.time()
}

// read fills s from data, the value of signingkey id in any version.
func (s *storedSigningKey) read(id string, data []byte) error {
	d, v0, err := openStored(kindSigningKey, id, data)
	switch {
	case err != nil:
		return err
	case v0:
		return decodeV0(kindSigningKey, id, data, s)
	}
	s.decodeV1(&d)
	return d.close()
}

func encodeSigningKey(k broker.SigningKey) []byte {
	s := storedSigningKeyOf(k)
	e := newStoredEncoder(kindSigningKey)
	s.encodeV1(e)
	return e.done()
}

func decodeSigningKey(id string, data []byte) (broker.SigningKey, error) {
	var s storedSigningKey
	if err := s.read(id, data); err != nil {
		return broker.SigningKey{}, err
	}
	return s.signingKey(), nil
}
