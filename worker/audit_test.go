package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// publishSeq publishes body to subject (with Nats-Msg-Id msgID when set)
// and a reply inbox, and returns the stream sequence JetStream gave it and
// the reply.
func publishSeq(t *testing.T, env *workertest.Env, subject, msgID string, body []byte) (uint64, map[string]any) {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := env.NC.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(worker.ReplyHeader, inbox)
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := env.JS.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	m, err := sub.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no reply for seq %d: %v", ack.Sequence, err)
	}
	var rep map[string]any
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		t.Fatalf("reply: %s", m.Data)
	}
	return ack.Sequence, rep
}

// TestAuditRepeats: on a real worker, outcome events name the stream and
// sequence JetStream gave the request, and a second message with the same
// request id gets one tat.attest.repeated naming its own sequence and the
// first outcome's event.
func TestAuditRepeats(t *testing.T) {
	f := newFixture(t)
	subject := f.env.Subject("attest", "requests", "shop")
	body, _ := json.Marshal(map[string]any{"request_id": "twice", "profile_id": f.profile, "token": f.token(nil), "session_duration_minutes": 5})
	seq1, r1 := publishSeq(t, f.env, subject, "", body)
	seq2, r2 := publishSeq(t, f.env, subject, "", body)
	mustStatus(t, r1, 200)
	mustStatus(t, r2, 200)
	if seq2 == seq1 {
		t.Fatal("both copies got one sequence")
	}
	var created, repeated []domain.Event
	for _, e := range f.env.Events() {
		switch e.Type {
		case domain.EventSessionCreated:
			created = append(created, e)
		case domain.EventAttestRepeated:
			repeated = append(repeated, e)
		}
	}
	if len(created) != 1 || len(repeated) != 1 {
		t.Fatalf("%d session.created, %d attest.repeated; want 1 and 1", len(created), len(repeated))
	}
	var c handlers.AttestEventData
	var r handlers.RepeatedEventData
	_ = json.Unmarshal(created[0].Data, &c)
	_ = json.Unmarshal(repeated[0].Data, &r)
	if c.Stream != "TAT_ATTEST" || c.StreamSeq != seq1 || c.RequestedAt.IsZero() || time.Since(c.RequestedAt) > time.Minute {
		t.Errorf("session.created names %+v, want TAT_ATTEST seq %d", c.Position, seq1)
	}
	if r.Stream != "TAT_ATTEST" || r.StreamSeq != seq2 || r.FirstEventID != created[0].ID || r.FirstStreamSeq != seq1 || r.RequestID != "twice" {
		t.Errorf("attest.repeated %+v, want seq %d naming %s at %d", r, seq2, created[0].ID, seq1)
	}
}

// TestAbandonRevisionByOnTheStore: the store reads back the latest
// revision of a session that a given request stored (what Abandon
// announces), on the real FerretDB.
func TestAbandonRevisionByOnTheStore(t *testing.T) {
	env := workertest.NewEnv(t)
	store := env.Store()
	ctx := context.Background()
	if err := store.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	var _ handlers.RevisionReader = store
	now := time.Now().UTC().Truncate(time.Second)
	s := domain.NewSession("session-a", "user-1", domain.FactorEvidence{ProfileID: "p", TokenID: "t"}, nil, now, 30)
	for rev, by := range map[int64]string{1: "r-1", 2: "r-2", 3: "r-1"} {
		s.LastAccessedAt = now.Add(time.Duration(rev) * time.Second)
		if _, _, err := store.InsertRevision(ctx, domain.SessionState{Session: s, Revision: rev}, by); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		session, by string
		rev         int64 // 0: none
	}{
		{"session-a", "r-1", 3},
		{"session-a", "r-2", 2},
		{"session-a", "r-3", 0},
		{"session-b", "r-1", 0},
	}
	for _, tc := range cases {
		st, ok, err := store.RevisionBy(ctx, tc.session, tc.by)
		if err != nil || ok != (tc.rev != 0) || st.Revision != tc.rev {
			t.Errorf("RevisionBy(%s, %s) = revision %d, %v, %v; want %d", tc.session, tc.by, st.Revision, ok, err, tc.rev)
		}
		if ok && (st.Session.SessionID != tc.session || !st.Session.LastAccessedAt.Equal(now.Add(time.Duration(tc.rev)*time.Second))) {
			t.Errorf("RevisionBy(%s, %s) read %+v", tc.session, tc.by, st.Session)
		}
	}
}
