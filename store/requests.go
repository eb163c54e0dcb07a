package store

import (
	"github.com/writhq/writ/broker"
)

// Request returns the request with the given id.
func (t *tx) Request(id string) (*broker.TaskRequest, error) {
	v, err := t.storedValueOf(bucketRequests, kindRequest, id)
	if err != nil {
		return nil, err
	}
	return decodeRequest(id, v)
}

// PutRequest writes r and moves its index keys to match its state.
func (t *tx) PutRequest(r *broker.TaskRequest) error {
	if r == nil {
		return broker.Errorf(broker.EINVALID, "no request to write")
	}
	var prev *broker.TaskRequest
	err := t.putStored(bucketRequests, kindRequest, r.ID, encodeRequest(r), func(old []byte) (err error) {
		prev, err = decodeRequest(r.ID, old)
		return err
	})
	if err != nil {
		return err
	}
	return t.reindex(requestIndex(prev), requestIndex(r))
}

// requestIndex lists the index keys a request holds in its state: a
// pending one is in the pending index and in the expiry index at its
// Deadline; any other is in none.
func requestIndex(r *broker.TaskRequest) []indexKey {
	if r == nil || r.State != broker.RequestPending {
		return nil
	}
	return []indexKey{
		{bucketRequestsPending, timeIDKey(r.CreatedAt, r.ID)},
		{bucketDue, dueKey(r.Deadline, dueKindRequest, r.ID)},
	}
}

// ForEachPending visits pending requests, oldest first.
func (t *tx) ForEachPending(fn func(*broker.TaskRequest) error) error {
	return t.forEachRequestIn(bucketRequestsPending, fn)
}

func (t *tx) forEachRequestIn(index []byte, fn func(*broker.TaskRequest) error) error {
	return t.forEachIndexed(index, nil, idFromTimeIDKey, func(id string) error {
		r, err := t.Request(id)
		if err != nil {
			return indexed(index, id, err)
		}
		return fn(r)
	})
}

// Decision returns the decision with the given id.
func (t *tx) Decision(id string) (*broker.Decision, error) {
	v, err := t.storedValueOf(bucketDecisions, kindDecision, id)
	if err != nil {
		return nil, err
	}
	return decodeDecision(id, v)
}

// PutDecision writes d.
func (t *tx) PutDecision(d *broker.Decision) error {
	if d == nil {
		return broker.Errorf(broker.EINVALID, "no decision to write")
	}
	return t.putStored(bucketDecisions, kindDecision, d.ID, encodeDecision(d), nil)
}
