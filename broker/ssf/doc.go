// Package ssf is writ's revocation feed: an OpenID Shared Signals Framework
// 1.0 transmitter that turns every revocation, completion and live narrowing
// of a grant into a signed Security Event Token (RFC 8417) carrying a CAEP
// 1.0 event, and delivers it to receivers by poll (RFC 8936, with long-poll)
// or push (RFC 8935).
//
// # Events
//
// Every SET follows the SSF profile: typ "secevent+jwt", no sub, no exp, a
// top-level sub_id, exactly one event, a jti unique to the SET, and txn set
// to the feed sequence number of the change that caused it (the same on
// every stream). A feed SET depends only on the change and the receiver, so
// every stream of one receiver (the replicas of a resource server) is sent
// the same SET, made once: its jti is a tag of the receiver's id and the
// feed sequence number. The events and their subjects:
//
//   - One grant (every token writ minted for it carries the grant id as sid):
//     session-revoked with sub_id {"format":"complex","session":{"format":"opaque","id":"<sid>"}}.
//   - One token: session-revoked with sub_id {"format":"jwt_id","iss":"<issuer>","jti":"<jti>"}.
//   - Everything one agent holds: session-revoked with sub_id
//     {"format":"complex","user":{"format":"iss_sub","iss":"<issuer>","sub":"<agent id>"}}
//     (the agent is the sub of its tokens, so this names all its sessions).
//   - Everything (revoke-all): session-revoked with sub_id
//     {"format":"complex","tenant":{"format":"uri","uri":"<issuer>"}}.
//   - A grant narrowed while live: token-claims-change with the grant's
//     session subject and claims {"scope", "authorization_details", "exp"}
//     holding the new values; a guard enforces them instead of the token's.
//
// Agent-wide and global revocations move an epoch on rather than listing
// grants, so they cost O(1). Their events carry the new epoch in the event
// member "https://writ.dev/ssf/epoch" (a URI, as SSF asks of members that
// an event type does not define): every token whose writ.agent_epoch (for
// an agent) or writ.epoch (for everything) is below it is revoked. A
// receiver that does not know the member can still act on the subject and
// event_timestamp.
//
// Events carry event_timestamp, initiating_entity (admin, user, policy or
// system) and, when the operator gave one, reason_admin {"en": reason}.
//
// # Streams
//
// Receivers manage streams through the SSF management API
// (configuration, status and verification endpoints); default_subjects is
// ALL and subjects cannot be added or removed. Each stream has a durable
// cursor in the store: the feed position up to which everything has been
// delivered (push: answered 202; poll: acknowledged). A receiver that was
// down gets what it missed, in order, when it comes back; SETs are
// delivered at least once and a redelivered SET keeps its jti. A new stream
// starts at the oldest change that can still matter, one token lifetime
// back, so a resource server that starts late still learns of revocations
// of tokens that are alive.
//
// # Wire types
//
// What a receiver reads and sends (SETs and their verifier, event types,
// subject formats, stream, poll and usage bodies) lives in the leaf
// package wire/ssfwire, which receivers import instead of this one.
package ssf
