package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

var _ handlers.SessionKeys = (*fakeRing)(nil)

// fakeRing is a SessionKeys as the worker's keyring honours it: records
// inserted under a unique number, planned by domain.PlanRotation, a key
// made by a change_id found again.
type fakeRing struct {
	mu   sync.Mutex
	recs []domain.KeyRecord
	// race, when set, inserts a record as another worker would, just
	// before this call's insert.
	race func(latest domain.KeyRecord) domain.KeyRecord
}

func newFakeRing() *fakeRing {
	return &fakeRing{recs: []domain.KeyRecord{{Number: 1, KID: "key-1", CreatedAt: t0.Add(-24 * time.Hour)}}}
}

func (f *fakeRing) Rotate(_ context.Context, changeID string, now time.Time) (domain.KeyInfo, domain.KeyInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, p, ok := f.madeBy(changeID); ok {
		return k, p, nil
	}
	latest := f.recs[len(f.recs)-1]
	next, err := domain.PlanRotation(latest, now, testSkew)
	if err != nil {
		return domain.KeyInfo{}, domain.KeyInfo{}, err
	}
	next.KID, next.ChangeID = fmt.Sprintf("key-%d", next.Number), changeID
	if f.race != nil {
		other := f.race(latest)
		f.race = nil
		f.recs = append(f.recs, other)
	}
	if f.recs[len(f.recs)-1].Number >= next.Number { // the unique insert
		return domain.KeyInfo{}, domain.KeyInfo{}, domain.ErrKeyRotationInProgress.With("another worker recorded key %d", next.Number)
	}
	f.recs = append(f.recs, next)
	k, p, _ := f.madeBy(changeID)
	return k, p, nil
}

func (f *fakeRing) Rotated(_ context.Context, changeID string) (domain.KeyInfo, domain.KeyInfo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, p, ok := f.madeBy(changeID)
	return k, p, ok, nil
}

func (f *fakeRing) madeBy(changeID string) (domain.KeyInfo, domain.KeyInfo, bool) {
	infos := domain.KeyInfos(f.recs, time.Time{})
	for i, r := range f.recs {
		if i > 0 && changeID != "" && r.ChangeID == changeID {
			return infos[i], infos[i-1], true
		}
	}
	return domain.KeyInfo{}, domain.KeyInfo{}, false
}

func (f *fakeRing) KeyInfos(now time.Time) []domain.KeyInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return domain.KeyInfos(f.recs, now)
}

func (f *fakeRing) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.recs)
}

type keysEnv struct {
	*env
	ring *fakeRing
	h    *handlers.KeyRotation
	seq  uint64
}

func newKeysEnv(t *testing.T) *keysEnv {
	e := newEnv(t, false)
	ring := newFakeRing()
	return &keysEnv{env: e, ring: ring, h: handlers.NewKeyRotation(e.view, e.barrier, e.attest.Done, e.clock.Now, ring)}
}

// rotate sends one keys command as a new message of TAT_ADMIN and decodes
// its reply.
func (k *keysEnv) rotate(t *testing.T, payload string) handlers.KeysEventData {
	t.Helper()
	k.seq++
	out, err := k.h.Handle(context.Background(), handlers.Input{Data: []byte(payload), Stream: "TAT_ADMIN", StreamSeq: k.seq, PublishedAt: k.clock.Now()})
	if err != nil {
		t.Fatalf("Handle returned a transient error: %v", err)
	}
	var d handlers.KeysEventData
	if err := json.Unmarshal(out.Reply, &d); err != nil {
		t.Fatalf("reply %s: %v", out.Reply, err)
	}
	if d.Stream != "" || d.StreamSeq != 0 {
		t.Errorf("the reply carries the command's position: %s", out.Reply)
	}
	return d
}

// TestKeyRotateCommandRotatesOnce: a rotate command records one key and
// publishes one tat.keys.rotated naming the new and previous kids and
// times; the same change_id again (another message) gets the same reply,
// rotates nothing and is announced by one tat.keys.repeated.
func TestKeyRotateCommandRotatesOnce(t *testing.T) {
	t.Parallel()
	k := newKeysEnv(t)
	first := k.rotate(t, `{"change_id":"rot-1","op":"rotate"}`)
	if first.StatusCode != 200 || first.Key == nil || first.Key.KID != "key-2" || first.PreviousKey == nil || first.PreviousKey.KID != "key-1" ||
		first.Trigger != handlers.TriggerCommand || first.ChangeID != "rot-1" {
		t.Fatalf("first reply %+v", first)
	}
	wantSign := t0.Add(domain.KeyPublishWindow + testSkew)
	if !first.Key.SignFrom.Equal(wantSign) || !first.PreviousKey.SignUntil.Equal(wantSign) ||
		!first.PreviousKey.RetireAt.Equal(wantSign.Add(domain.SessionJWTLifetime+testSkew)) || first.Key.State != "" {
		t.Errorf("times %+v / %+v", first.Key, first.PreviousKey)
	}
	// Past the publish window the same command is still answered from its
	// outcome: no new key.
	k.clock.Set(wantSign.Add(time.Hour))
	again := k.rotate(t, `{"change_id":"rot-1","op":"rotate"}`)
	if again.StatusCode != 200 || again.Key == nil || again.Key.KID != "key-2" {
		t.Fatalf("repeat reply %+v", again)
	}
	if n := k.ring.count(); n != 2 {
		t.Fatalf("%d keys after a repeated command, want 2", n)
	}
	rotated, repeated := k.pub.OfType(domain.EventKeysRotated), k.pub.OfType(domain.EventKeysRepeated)
	if len(rotated) != 1 || len(repeated) != 1 {
		t.Fatalf("%d rotated, %d repeated events", len(rotated), len(repeated))
	}
	if p := positionOf(t, rotated[0]); p.Stream != "TAT_ADMIN" || p.StreamSeq != 1 {
		t.Errorf("rotated names %+v", p)
	}
	if d := repeatedOf(t, repeated[0]); d.ChangeID != "rot-1" || d.StreamSeq != 2 || d.FirstEventID != rotated[0].ID || d.StatusCode != 200 {
		t.Errorf("repeated %+v", d)
	}
	if rotated[0].Subject != "key-2" {
		t.Errorf("rotated subject %q, want the new kid", rotated[0].Subject)
	}
}

// TestKeyRotateRefusedInPublishWindow is the rate limit: while the newest
// key is in its publish window a rotation is refused (409
// key_rotation_in_progress, one tat.keys.rejected), so rapid commands
// cannot stack keys; exactly at its sign_from a rotation is accepted.
func TestKeyRotateRefusedInPublishWindow(t *testing.T) {
	t.Parallel()
	k := newKeysEnv(t)
	first := k.rotate(t, `{"change_id":"rot-1","op":"rotate"}`)
	signFrom := first.Key.SignFrom
	for i, at := range []time.Time{t0, t0.Add(time.Minute), signFrom.Add(-time.Second)} {
		k.clock.Set(at)
		r := k.rotate(t, fmt.Sprintf(`{"change_id":"rot-fast-%d","op":"rotate"}`, i))
		if r.StatusCode != 409 || r.ErrorType != "key_rotation_in_progress" || r.Key != nil {
			t.Fatalf("rotation at %s, in the publish window: %+v", at, r)
		}
	}
	if n := k.ring.count(); n != 2 {
		t.Fatalf("%d keys, want 2", n)
	}
	if rej := k.pub.OfType(domain.EventKeysRejected); len(rej) != 3 || rej[0].Subject != "" {
		t.Fatalf("rejected events %+v", rej)
	}
	k.clock.Set(signFrom)
	if r := k.rotate(t, `{"change_id":"rot-2","op":"rotate"}`); r.StatusCode != 200 || r.Key.Number != 3 {
		t.Fatalf("rotation at sign_from: %+v", r)
	}
}

// TestKeyRotateRaceLost: another worker's insert of the same next number
// (the schedule firing elsewhere) wins; the command is refused, not a
// second key.
func TestKeyRotateRaceLost(t *testing.T) {
	t.Parallel()
	k := newKeysEnv(t)
	k.ring.race = func(latest domain.KeyRecord) domain.KeyRecord {
		r, _ := domain.PlanRotation(latest, t0, testSkew)
		r.KID = "scheduled"
		return r
	}
	r := k.rotate(t, `{"change_id":"rot-1","op":"rotate"}`)
	if r.StatusCode != 409 || r.ErrorType != "key_rotation_in_progress" {
		t.Fatalf("reply %+v", r)
	}
	infos := k.ring.KeyInfos(t0)
	if len(infos) != 2 || infos[1].KID != "scheduled" {
		t.Fatalf("keys %+v", infos)
	}
}

func TestKeyRotateRefusesBadCommands(t *testing.T) {
	t.Parallel()
	k := newKeysEnv(t)
	for _, p := range []string{`{"change_id":"b-1","op":"delete"}`, `{"change_id":"b-2"}`, `{"change_id":"b-3","op":"rotate","kid":"x"}`, `[]`} {
		r := k.rotate(t, p)
		if r.StatusCode != 400 || r.ErrorType != "invalid_request" {
			t.Errorf("%s: %+v", p, r)
		}
	}
	if n := k.ring.count(); n != 1 {
		t.Fatalf("%d keys after refused commands", n)
	}
}

// TestKeyRotateAbandonAnnouncesAStoredKey: a command whose key was stored
// by an earlier delivery, which then failed before its outcome, ends as
// tat.keys.rotated when given up, never as rejected: no key is published
// that no event announces. One that stored nothing ends rejected.
func TestKeyRotateAbandonAnnouncesAStoredKey(t *testing.T) {
	t.Parallel()
	k := newKeysEnv(t)
	ctx := context.Background()
	in := handlers.Input{Data: []byte(`{"change_id":"rot-1","op":"rotate"}`), Stream: "TAT_ADMIN", StreamSeq: 5, PublishedAt: t0}
	k.outcomes.down.Store(true)
	if _, err := k.h.Handle(ctx, in); !errors.Is(err, errStoreDown) {
		t.Fatalf("Handle with the store down: %v", err)
	}
	k.outcomes.down.Store(false)
	in.Redelivered = true
	if _, err := k.h.Abandon(ctx, in, errors.New("deliveries exhausted")); err != nil {
		t.Fatal(err)
	}
	if ev := k.pub.OfType(domain.EventKeysRotated); len(ev) != 1 || len(k.pub.OfType(domain.EventKeysRejected)) != 0 {
		t.Fatalf("events %+v", k.pub.Events())
	}
	in = handlers.Input{Data: []byte(`{"change_id":"rot-9","op":"rotate"}`), Stream: "TAT_ADMIN", StreamSeq: 6, PublishedAt: t0, Redelivered: true}
	if _, err := k.h.Abandon(ctx, in, errors.New("deliveries exhausted")); err != nil {
		t.Fatal(err)
	}
	rej := k.pub.OfType(domain.EventKeysRejected)
	if len(rej) != 1 {
		t.Fatalf("events %+v", k.pub.Events())
	}
	var d handlers.KeysEventData
	_ = json.Unmarshal(rej[0].Data, &d)
	if d.StatusCode != 500 || d.ErrorType != "internal_server_error" || k.ring.count() != 2 {
		t.Errorf("abandoned command: %+v, %d keys", d, k.ring.count())
	}
}

// TestKeysListRead: reads.keys.list names each key's kid, number, state at
// the time of the read and times, and refuses members it does not know.
func TestKeysListRead(t *testing.T) {
	t.Parallel()
	k := newKeysEnv(t)
	first := k.rotate(t, `{"change_id":"rot-1","op":"rotate"}`)
	reads := &handlers.Reads{View: k.view, Barrier: k.barrier, Now: k.clock.Now, SessionKeys: k.ring}
	states := func() []domain.KeyState {
		r := reads.KeysList(context.Background(), []byte(`{}`))
		if r.StatusCode != 200 || r.Keys == nil {
			t.Fatalf("list %+v", r)
		}
		var out []domain.KeyState
		for _, ki := range *r.Keys {
			out = append(out, ki.State)
		}
		return out
	}
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{t0, "[signing next]"},
		{first.Key.SignFrom, "[verifying signing]"},
		{first.PreviousKey.RetireAt, "[retired signing]"},
	} {
		k.clock.Set(tc.at)
		if got := fmt.Sprint(states()); got != tc.want {
			t.Errorf("at %s: %s, want %s", tc.at, got, tc.want)
		}
	}
	if r := reads.KeysList(context.Background(), []byte(`{"kid":"x"}`)); r.StatusCode != 400 || r.ErrorType != "invalid_request" {
		t.Errorf("unknown member: %+v", r)
	}
	empty := (&handlers.Reads{Now: k.clock.Now}).KeysList(context.Background(), []byte(`{}`))
	if b, _ := json.Marshal(empty); string(b) != `{"status_code":200,"keys":[]}` {
		t.Errorf("no keys: %s", b)
	}
}
