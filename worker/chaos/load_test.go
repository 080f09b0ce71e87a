//go:build chaos

package chaos

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// kind is what a planned request is and so which outcome it must get.
type kind int

const (
	kindSession        kind = iota // fresh token, session_duration_minutes: session.created
	kindVerify                     // fresh token, no session asked: attest.verified
	kindUnknownProfile             // attest.failed, trusted_token_profile_not_found
	kindReplayPair                 // two requests share one token: one session.created, one token_replayed
)

func (k kind) String() string {
	return [...]string{"session", "verify", "unknown-profile", "replay-pair"}[k]
}

// planned is one request of the load.
type planned struct {
	id      string
	kind    kind
	partner string // the other request of a replay pair
	body    []byte
}

// load is the requests of one test, in publishing order.
type load struct {
	reqs []planned
	byID map[string]*planned
}

// plan builds n requests (replay pairs count as two): mostly sessions,
// one in ten verify-only, one in fifty with an unknown profile and one in
// fifty a pair sharing one token. The second of a pair is published
// later, so the two usually do not race, but either may win.
func (h *harness) plan(prefix string, n int) *load {
	l := &load{byID: map[string]*planned{}}
	var lateReplays []planned
	add := func(p planned) {
		l.reqs = append(l.reqs, p)
	}
	body := func(id, profile, token string, minutes int) []byte {
		m := map[string]any{"request_id": id, "profile_id": profile, "token": token}
		if minutes > 0 {
			m["session_duration_minutes"] = minutes
		}
		b, _ := json.Marshal(m)
		return b
	}
	for i := 0; len(l.reqs)+len(lateReplays) < n; i++ {
		id := fmt.Sprintf("%s-%05d", prefix, i)
		tok := h.idp.Token(map[string]any{"email": tokenEmailClaim, "jti": uuid.NewString(), "exp": time.Now().Add(30 * time.Minute).Unix()})
		switch {
		case i%50 == 7:
			add(planned{id: id, kind: kindUnknownProfile, body: body(id, "trusted-auth-token-profile-"+uuid.NewString(), tok, 60)})
		case i%50 == 23:
			b := id + "-replay"
			add(planned{id: id, kind: kindReplayPair, partner: b, body: body(id, h.profileID, tok, 60)})
			lateReplays = append(lateReplays, planned{id: b, kind: kindReplayPair, partner: id, body: body(b, h.profileID, tok, 60)})
		case i%10 == 3:
			add(planned{id: id, kind: kindVerify, body: body(id, h.profileID, tok, 0)})
		default:
			add(planned{id: id, kind: kindSession, body: body(id, h.profileID, tok, 60)})
		}
	}
	l.reqs = append(l.reqs, lateReplays...)
	for i := range l.reqs {
		l.byID[l.reqs[i].id] = &l.reqs[i]
	}
	return l
}

// publisher publishes a load in the background, each request with its
// request_id as Nats-Msg-Id, retrying through outages.
type publisher struct {
	mu   sync.Mutex
	sent int
	err  error
	done chan struct{}
}

func (h *harness) publish(l *load) *publisher {
	p := &publisher{done: make(chan struct{})}
	h.watchProgress()
	go func() {
		defer close(p.done)
		for _, r := range l.reqs {
			msg := &nats.Msg{Subject: attestSubject, Data: r.body, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, r.id)
			if err := publishRetry(h.js, msg, 2*time.Minute); err != nil {
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
				return
			}
			p.mu.Lock()
			p.sent++
			p.mu.Unlock()
		}
	}()
	return p
}

// wait waits for every request to be published.
func (p *publisher) wait(h *harness) {
	h.t.Helper()
	select {
	case <-p.done:
		h.logf("all %d requests published", p.sent)
	case <-time.After(3 * time.Minute):
		h.t.Fatal("publishing the load did not finish within 3 minutes")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		h.t.Fatal(p.err)
	}
}
