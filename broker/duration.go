package broker

import (
	"encoding/json"
	"fmt"
	"time"
)

// jsonDuration writes a duration as a person does ("15m", "1h30m"), never
// as nanoseconds, and reads either form, so records written before keep
// loading.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(shortDuration(time.Duration(d)))
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case float64:
		*d = jsonDuration(x)
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			return fmt.Errorf("duration %q: %w", x, err)
		}
		*d = jsonDuration(p)
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
		TTL jsonDuration `json:"ttl"`
	}{plain(t), jsonDuration(t.TTL)})
}

// UnmarshalJSON reads a TTL written as "15m" or as nanoseconds.
func (t *Terms) UnmarshalJSON(b []byte) error {
	type plain Terms
	aux := struct {
		*plain
		TTL jsonDuration `json:"ttl"`
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
		MaxTTL *jsonDuration `json:"max_ttl,omitempty"`
	}{plain: plain(p)}
	if p.MaxTTL != 0 {
		d := jsonDuration(p.MaxTTL)
		out.MaxTTL = &d
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads MaxTTL written as "15m" or as nanoseconds.
func (p *PolicyResult) UnmarshalJSON(b []byte) error {
	type plain PolicyResult
	aux := struct {
		*plain
		MaxTTL jsonDuration `json:"max_ttl"`
	}{plain: (*plain)(p)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	p.MaxTTL = time.Duration(aux.MaxTTL)
	return nil
}
