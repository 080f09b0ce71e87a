// Package compose is attestd's composition root: it builds the handlers on
// the store and on the parts of a started worker, and hands the worker
// only the small interfaces it routes to. cmd/attestd runs it, and the
// integration tests (worker/workertest) run the same wiring.
package compose

import (
	"errors"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
	"github.com/tat-worker/attest/worker"
)

// HandlerStore is what the handlers need of the store.
type HandlerStore interface {
	handlers.OutcomeStore
	handlers.ReplayStore
	handlers.SessionStore
	handlers.RevisionReader
	handlers.UserStore
	handlers.ProfileStore
}

// Store is the one store of attestd: the handlers' ports and the worker's
// own small interfaces. *mongostore.Store is one.
type Store interface {
	HandlerStore
	worker.StoreSetup
	worker.SnapshotLoader
	worker.SecretStore
	worker.Pinger
	worker.Sweeper
	worker.BatchCounter
}

// New builds attestd's worker on store: d with its store interfaces and
// Handlers set from store; the caller fills the rest of d (NC, MasterKey,
// Log, and the optional ones).
func New(cfg worker.Config, store Store, d worker.Deps) (*worker.Worker, error) {
	if store == nil {
		return nil, errors.New("compose: no store")
	}
	d.Setup, d.Snapshots, d.Secrets, d.Pinger, d.Sweeper, d.Batches = store, store, store, store, store, store
	d.Handlers = Handlers(store)
	return worker.New(cfg, d)
}

// Handlers returns the worker's HandlerBuilder: every handler on store and
// on the worker's parts.
func Handlers(store HandlerStore) worker.HandlerBuilder {
	return func(p worker.Parts) (worker.Handlers, error) {
		if store == nil {
			return worker.Handlers{}, errors.New("compose: no store for the handlers")
		}
		done := &handlers.Completer{Outcomes: store, Pub: p.Publisher, Apply: p.Apply}
		attest := &handlers.Attest{
			View: p.View, Barrier: p.Barrier, Keys: p.JWKS, Replays: store, Sessions: store, Revisions: store, Users: store,
			Pub: p.Publisher, Done: done, Issuer: p.Issuer, Now: p.Now, Skew: p.Config.ClockSkew, MaxTokenBytes: p.Config.MaxTokenBytes,
		}
		rules := domain.ProfileRules{AllowHTTPJWKS: p.Config.JWKSAllowLocal}
		profiles := handlers.NewProfileChange(p.View, p.Barrier, done, p.Now, store, p.JWKS, rules)
		sessions := &handlers.Sessions{View: p.View, Barrier: p.Barrier, Sessions: store, Pub: p.Publisher, Issuer: p.Issuer, Now: p.Now}
		users := handlers.NewUserChange(p.View, p.Barrier, done, p.Now, store)
		users.Sessions = sessions // a user deleted or made inactive has its sessions ended
		keys := handlers.NewKeyRotation(p.View, p.Barrier, done, p.Now, p.SessionKeys)
		reads := &handlers.Reads{View: p.View, Barrier: p.Barrier, Now: p.Now, SessionKeys: p.SessionKeys, MaxReplyBytes: p.MaxReadReplyBytes}
		return worker.Handlers{
			Attest: attest, Profiles: profiles, Users: users, Keys: keys,
			Sessions: sessions, Reads: reads,
		}, nil
	}
}
