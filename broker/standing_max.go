package broker

import "time"

// MaxStanding is the longest a standing approval may last here
// (Options.MaxStanding, or DefaultMaxStanding), for consoles to offer no
// more than the broker accepts.
func (s *Service) MaxStanding() time.Duration { return s.standing.Max() }
