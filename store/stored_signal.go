package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/writhq/writ/broker"
)

// storedSignal is a broker.Signal as stored (kind 's'). Claims, free-form
// and rare (token-claims-change only), are kept as their JSON.
type storedSignal struct {
	Seq              uint64         `json:"seq"`
	Kind             string         `json:"kind"`
	At               time.Time      `json:"at"`
	GrantID          string         `json:"grant_id"`
	JTI              string         `json:"jti"`
	AgentID          string         `json:"agent_id"`
	All              bool           `json:"all"`
	Epoch            uint64         `json:"epoch"`
	Audience         string         `json:"aud"`
	InitiatingEntity string         `json:"initiating_entity"`
	Reason           string         `json:"reason"`
	Claims           map[string]any `json:"claims"`
	// claimsJSON is Claims as version 1 stores it, nil for no claims.
	claimsJSON []byte
}

func storedSignalOf(x *broker.Signal) (storedSignal, error) {
	s := storedSignal{Seq: x.Seq, Kind: string(x.Kind), At: x.At, GrantID: x.GrantID, JTI: x.JTI, AgentID: x.AgentID,
		All: x.All, Epoch: x.Epoch, Audience: x.Audience, InitiatingEntity: x.InitiatingEntity, Reason: x.Reason, Claims: x.Claims}
	if x.Claims != nil {
		b, err := json.Marshal(x.Claims)
		if err != nil {
			return s, fmt.Errorf("encode signal %d claims: %w", x.Seq, err)
		}
		s.claimsJSON = b
	}
	return s, nil
}

func (s *storedSignal) signal() *broker.Signal {
	return &broker.Signal{Seq: s.Seq, Kind: broker.SignalKind(s.Kind), At: s.At, GrantID: s.GrantID, JTI: s.JTI, AgentID: s.AgentID,
		All: s.All, Epoch: s.Epoch, Audience: s.Audience, InitiatingEntity: s.InitiatingEntity, Reason: s.Reason, Claims: s.Claims}
}

func (s *storedSignal) encodeV1(e *encoder) {
	e.uint(s.Seq)
	e.string(s.Kind)
	e.time(s.At)
	e.string(s.GrantID)
	e.string(s.JTI)
	e.string(s.AgentID)
	e.bool(s.All)
	e.uint(s.Epoch)
	e.string(s.Audience)
	e.string(s.InitiatingEntity)
	e.string(s.Reason)
	e.bytes(s.claimsJSON)
}

func (s *storedSignal) decodeV1(d *decoder) {
	s.Seq = d.uint()
	s.Kind = d.string()
	s.At = d.time()
	s.GrantID = d.string()
	s.JTI = d.string()
	s.AgentID = d.string()
	s.All = d.bool()
	s.Epoch = d.uint()
	s.Audience = d.string()
	s.InitiatingEntity = d.string()
	s.Reason = d.string()
	if claims := d.bytes(); claims != nil && d.err == nil {
		// As version 0 read them: JSON's own types (numbers as float64).
		if err := json.Unmarshal(claims, &s.Claims); err != nil {
			d.fail("claims are not JSON: %v", err)
		} else if s.Claims == nil {
			d.fail("claims are null")
		}
	}
}

// read fills s from data, the value of signal id in any version.
func (s *storedSignal) read(id string, data []byte) error {
	d, v0, err := openStored(kindSignal, id, data)
	switch {
	case err != nil:
		return err
	case v0:
		return decodeV0(kindSignal, id, data, s)
	}
	s.decodeV1(&d)
	return d.close()
}

func encodeSignal(x *broker.Signal) ([]byte, error) {
	s, err := storedSignalOf(x)
	if err != nil {
		return nil, err
	}
	e := newStoredEncoder(kindSignal)
	s.encodeV1(e)
	return e.done(), nil
}

func decodeSignal(seq uint64, data []byte) (*broker.Signal, error) {
	var s storedSignal
	if err := s.read(strconv.FormatUint(seq, 10), data); err != nil {
		return nil, err
	}
	return s.signal(), nil
}
