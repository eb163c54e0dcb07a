package broker

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration on the wire and in records: written as a
// person writes it ("15m", "1h30m"), never as nanoseconds, and read in
// either form, so records written before keep loading.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(shortDuration(time.Duration(d)))
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case float64:
		*d = Duration(x)
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			return fmt.Errorf("duration %q: %w", x, err)
		}
		*d = Duration(p)
	case nil:
		*d = 0
	default:
		return fmt.Errorf("duration must be a string like \"15m\", got %s", b)
	}
	return nil
}

// MarshalJSON writes the TTL as "15m".
func (t Terms) MarshalJSON() ([]byte, error) {
	type plain Terms
	return json.Marshal(struct {
		plain
		TTL Duration `json:"ttl"`
	}{plain(t), Duration(t.TTL)})
}

// UnmarshalJSON reads a TTL written as "15m" or as nanoseconds.
func (t *Terms) UnmarshalJSON(b []byte) error {
	type plain Terms
	aux := struct {
		*plain
		TTL Duration `json:"ttl"`
	}{plain: (*plain)(t)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	t.TTL = time.Duration(aux.TTL)
	return nil
}

// MarshalJSON writes MaxTTL as "15m".
func (p PolicyResult) MarshalJSON() ([]byte, error) {
	type plain PolicyResult
	out := struct {
		plain
		MaxTTL *Duration `json:"max_ttl,omitempty"`
	}{plain: plain(p)}
	if p.MaxTTL != 0 {
		d := Duration(p.MaxTTL)
		out.MaxTTL = &d
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads MaxTTL written as "15m" or as nanoseconds.
func (p *PolicyResult) UnmarshalJSON(b []byte) error {
	type plain PolicyResult
	aux := struct {
		*plain
		MaxTTL Duration `json:"max_ttl"`
	}{plain: (*plain)(p)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	p.MaxTTL = time.Duration(aux.MaxTTL)
	return nil
}

// MarshalJSON writes the poll interval as "5s".
func (r TaskRequest) MarshalJSON() ([]byte, error) {
	type plain TaskRequest
	return json.Marshal(struct {
		plain
		Interval Duration `json:"interval"`
	}{plain(r), Duration(r.Interval)})
}

// UnmarshalJSON reads a poll interval written as "5s" or as nanoseconds.
func (r *TaskRequest) UnmarshalJSON(b []byte) error {
	type plain TaskRequest
	aux := struct {
		*plain
		Interval Duration `json:"interval"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	r.Interval = time.Duration(aux.Interval)
	return nil
}
