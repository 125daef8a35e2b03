package store

import (
	"context"
	"time"
)

// MWISubscription is one SUBSCRIBE dialog for the message-summary event
// package (RFC 3842, RFC 6665), kept so that it survives a restart: after
// start-up every live subscription gets a NOTIFY with the current state.
type MWISubscription struct {
	ID      string // ours (a UUID); the dialog is CallID + tags
	Tenant  string
	Mailbox string // the mailbox whose counts the subscription follows

	CallID    string
	LocalTag  string // our tag (To of the SUBSCRIBE, From of our NOTIFYs)
	RemoteTag string // the subscriber's tag
	EventID   string // the id parameter of the Event header, echoed

	LocalURI    string   // the To header of the SUBSCRIBE without tag: From of our NOTIFYs
	RemoteURI   string   // the From header of the SUBSCRIBE without tag: To of our NOTIFYs
	Contact     string   // the remote target (the subscriber's Contact URI)
	RouteSet    []string // the Record-Route values of the SUBSCRIBE, in order
	Transport   string   // UDP, TCP, TLS
	Source      string   // host:port the SUBSCRIBE came from (symmetric signalling)
	AccountHost string   // the host of Message-Account: the domain the phone subscribed to

	LocalCSeq  uint32 // the CSeq of our last NOTIFY
	RemoteCSeq uint32 // the CSeq of the subscriber's last SUBSCRIBE

	ExpiresAt time.Time // UTC
	CreatedAt time.Time // UTC

	// Owner is the instance that sends this subscription's NOTIFYs
	// (docs/mwi.md): "" for none yet (rows from before clustering), which
	// the first instance to look claims.
	Owner string
}

// MWITargetStop records that a mailbox's unsolicited MWI target no longer
// gets NOTIFYs: it answered 481/405/489, or it subscribed itself.
type MWITargetStop struct {
	Tenant, Mailbox, Target string
	Reason                  string // "481", "405", "489" or "subscribed"
	At                      time.Time
}

// MWIStore keeps MWI subscriptions (docs/mwi.md) so that they survive a restart,
// and the unsolicited targets that must not be notified any more.
type MWIStore interface {
	// SaveMWISubscription inserts the subscription or replaces the one with
	// the same ID.
	SaveMWISubscription(ctx context.Context, s *MWISubscription) error
	// DeleteMWISubscription removes it; deleting an absent one is no error.
	DeleteMWISubscription(ctx context.Context, id string) error
	// ListMWISubscriptions returns every stored subscription, expired ones
	// included (the caller terminates those), ordered by ID.
	ListMWISubscriptions(ctx context.Context) ([]MWISubscription, error)
	// ListOwnedMWISubscriptions returns the subscriptions owner holds,
	// ordered by ID.
	ListOwnedMWISubscriptions(ctx context.Context, owner string) ([]MWISubscription, error)
	// OwnedMWISubscriptionIDs returns the IDs of the subscriptions owner
	// holds: an instance drops from memory those it no longer holds.
	OwnedMWISubscriptionIDs(ctx context.Context, owner string) ([]string, error)
	// CountOwnedMWISubscriptions counts them (from the owner index): the
	// cheap question an instance asks every heartbeat before the list.
	CountOwnedMWISubscriptions(ctx context.Context, owner string) (int, error)
	// ClaimMWISubscriptions makes owner the owner of every subscription
	// whose owner is not a live instance at now (see ClusterStore), and
	// returns them ordered by ID. Concurrent claimers get disjoint sets.
	ClaimMWISubscriptions(ctx context.Context, owner string, now time.Time) ([]MWISubscription, error)
	// TakeMWISubscription makes owner the owner of the subscription of the
	// dialog (a refresh reached this instance) and returns it; ErrNotFound
	// when there is none.
	TakeMWISubscription(ctx context.Context, owner, callID, remoteTag, localTag, eventID string) (*MWISubscription, error)
	// SetMWILocalCSeqs records the CSeq of the last NOTIFY of many
	// subscriptions in one transaction (absent IDs are skipped); a stored
	// value never goes down.
	SetMWILocalCSeqs(ctx context.Context, cseqs map[string]uint32) error
	// RaiseMWILocalCSeqs adds by to the stored CSeq of every subscription
	// owner holds, in one statement: the reservation of an instance that
	// has just loaded them all.
	RaiseMWILocalCSeqs(ctx context.Context, owner string, by uint32) error

	// StopMWITarget records (or refreshes) a stop for the mailbox's target.
	StopMWITarget(ctx context.Context, stop MWITargetStop) error
	// ResumeMWITarget forgets a stop (no error when there is none).
	ResumeMWITarget(ctx context.Context, tenant, mailbox, target string) error
	// ListMWITargetStops returns every stop, ordered by tenant, mailbox, target.
	ListMWITargetStops(ctx context.Context) ([]MWITargetStop, error)
}
