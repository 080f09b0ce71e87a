package client_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/client"
)

// publishLog records what a wrapped publish saw.
type publishLog struct {
	mu      sync.Mutex
	ids     []string
	inboxes []string
	acks    []*jetstream.PubAck
}

func (l *publishLog) add(m *nats.Msg, ack *jetstream.PubAck) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids = append(l.ids, m.Header.Get(jetstream.MsgIDHeader))
	l.inboxes = append(l.inboxes, m.Header.Get(client.ReplyHeader))
	l.acks = append(l.acks, ack)
}

// TestLostPublishIsRetriedWithTheSameID: a publish whose PubAck never
// comes is published again with the same Nats-Msg-Id, and the command
// still has one outcome and one event, whichever way it was lost:
//
//   - lost on the way to the server: the retry is the first copy stored;
//   - stored, ack lost, retried at once: JetStream drops the copy
//     (duplicate), and the first copy's reply still arrives;
//   - stored, ack lost, retried after the duplicate window: both copies
//     reach the worker, which answers twice with the one outcome; the
//     client returns one.
func TestLostPublishIsRetriedWithTheSameID(t *testing.T) {
	cases := []struct {
		name string
		// lose decides the fate of the first attempt: whether it reaches
		// the server, and how long its (lost) ack is waited for.
		reaches bool
		hold    time.Duration
		// wantDuplicate: the retry's ack says duplicate.
		wantDuplicate bool
		wantReplies   int
	}{
		{name: "publish lost", reaches: false, wantDuplicate: false, wantReplies: 1},
		{name: "ack lost, retried in the duplicate window", reaches: true, wantDuplicate: true, wantReplies: 1},
		{name: "ack lost, retried after the duplicate window", reaches: true, hold: 2 * time.Second, wantDuplicate: false, wantReplies: 2},
	}
	f := newFixture(t, newClient(t))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, client.WithAckWait(3*time.Second))
			log := &publishLog{}
			replies := make(chan *nats.Msg, 10)
			spy := connect(t)
			client.WrapPublish(c, func(next client.PublishFunc) client.PublishFunc {
				attempt := 0
				return func(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
					attempt++
					if attempt == 1 {
						// Count every reply sent to this call's inbox.
						if _, err := spy.ChanSubscribe(m.Header.Get(client.ReplyHeader), replies); err != nil {
							return nil, err
						}
						_ = spy.Flush()
						if tc.reaches {
							ack, err := next(ctx, m)
							log.add(m, ack)
							if err != nil {
								return nil, err
							}
						} else {
							log.add(m, nil)
						}
						select { // the ack is lost: the caller's ack wait runs out
						case <-time.After(tc.hold):
							return nil, context.DeadlineExceeded
						case <-ctx.Done():
							return nil, ctx.Err()
						}
					}
					ack, err := next(ctx, m)
					log.add(m, ack)
					return ack, err
				}
			})
			id := "lost-" + uuid.NewString()
			res, err := c.Attest(testCtx(t), client.AttestRequest{RequestID: id, ProfileID: f.profile, Token: token(f.email, nil), SessionDurationMinutes: 5})
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || res.Session == nil || res.SessionToken.Empty() {
				t.Fatalf("result = %+v", res)
			}
			log.mu.Lock()
			if len(log.ids) != 2 || log.ids[0] != id || log.ids[1] != id || log.inboxes[0] != log.inboxes[1] {
				t.Fatalf("publications: ids %v, inboxes %v; want two with id %s and one inbox", log.ids, log.inboxes, id)
			}
			if got := log.acks[1].Duplicate; got != tc.wantDuplicate {
				t.Errorf("retry's ack duplicate = %v, want %v", got, tc.wantDuplicate)
			}
			log.mu.Unlock()
			evs := eventsOf(t, c, id)
			if len(evs) != 1 || evs[0].Type != client.EventSessionCreated {
				t.Fatalf("events of %s = %d, want one session.created", id, len(evs))
			}
			if got := evs[0].Data.(*client.SessionEventData).Session.SessionID; got != res.Session.SessionID {
				t.Errorf("event session %s, result session %s", got, res.Session.SessionID)
			}
			// Every reply that was sent has arrived by now (the worker
			// replies before it acks; the events are read after).
			time.Sleep(200 * time.Millisecond)
			if got := len(replies); got != tc.wantReplies {
				t.Errorf("replies sent to the inbox = %d, want %d (the client returned one)", got, tc.wantReplies)
			}
		})
	}
}

// TestForeignReplyIgnored: a message on a command's inbox that names
// another request id (a stray or forged reply), or a forged "no responders"
// status, is ignored; the client waits for its own reply.
func TestForeignReplyIgnored(t *testing.T) {
	c := newClient(t)
	f := newFixture(t, c)
	intruder := connect(t)
	client.WrapPublish(c, func(next client.PublishFunc) client.PublishFunc {
		return func(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
			inbox := m.Header.Get(client.ReplyHeader)
			forged := `{"status_code":200,"request_id":"someone-else","user_id":"user-evil","session_token":"tat_st_forged"}`
			if err := intruder.Publish(inbox, []byte(forged)); err != nil {
				return nil, err
			}
			status := &nats.Msg{Subject: inbox, Header: nats.Header{"Status": []string{"503"}}} // "no responders"
			if err := intruder.PublishMsg(status); err != nil {
				return nil, err
			}
			_ = intruder.Flush()
			return next(ctx, m)
		}
	})
	res, err := c.Attest(testCtx(t), client.AttestRequest{ProfileID: f.profile, Token: token(f.email, nil), SessionDurationMinutes: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.UserID != f.userID || res.SessionToken.Reveal() == "tat_st_forged" {
		t.Fatalf("the client took the forged reply: %+v", res)
	}
}

// slowPrefix makes a stream that takes <prefix>.attest.requests and
// <prefix>.profiles.commands, and a sessions responder that never answers:
// commands are stored and never answered, like a worker that is down.
func slowPrefix(t *testing.T) string {
	t.Helper()
	prefix := "slow" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	nc := connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	name := strings.ToUpper(prefix) + "_ATTEST"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name,
		Subjects: []string{prefix + ".attest.requests", prefix + ".profiles.commands"}, Duplicates: time.Second}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	if _, err := nc.Subscribe(prefix+".sessions.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return prefix
}

// TestContextEndsTheWait: a call whose context is cancelled (or reaches
// its deadline) while it waits for the reply returns at once with an error
// that wraps ctx.Err(); for a command it says where the stream holds it
// and under which id to ask again.
func TestContextEndsTheWait(t *testing.T) {
	prefix := slowPrefix(t)
	c := newClient(t, client.WithPrefix(prefix))
	// afterAck, when set, runs once a command's PubAck has come: the
	// cancel then surely falls in the wait for the reply.
	var afterAck atomic.Pointer[func()]
	client.WrapPublish(c, func(next client.PublishFunc) client.PublishFunc {
		return func(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
			ack, err := next(ctx, m)
			if f := afterAck.Swap(nil); f != nil && err == nil {
				(*f)()
			}
			return ack, err
		}
	})
	type call func(ctx context.Context) error
	calls := map[string]call{
		"attest": func(ctx context.Context) error {
			_, err := c.Attest(ctx, client.AttestRequest{ProfileID: "p", Token: client.NewSecret("t")})
			return err
		},
		"apply profile": func(ctx context.Context) error {
			_, err := c.ApplyProfile(ctx, client.ProfileCommand{Profile: testProfile("p")})
			return err
		},
		"authenticate": func(ctx context.Context) error {
			_, err := c.Authenticate(ctx, client.AuthenticateRequest{SessionToken: client.NewSecret("tat_st_x")})
			return err
		},
	}
	for name, call := range calls {
		command := name != "authenticate"
		t.Run(name+" cancelled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var cancelled atomic.Int64
			stop := func() {
				time.AfterFunc(100*time.Millisecond, func() { cancelled.Store(time.Now().UnixNano()); cancel() })
			}
			if command {
				afterAck.Store(&stop)
			} else {
				stop() // the responder never answers
			}
			err := call(ctx)
			if !errors.Is(err, context.Canceled) || errors.Is(err, client.ErrTimeout) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if d := time.Since(time.Unix(0, cancelled.Load())); d > 2*time.Second {
				t.Errorf("returned %s after the cancel", d)
			}
			checkTransport(t, err, command, prefix)
		})
		t.Run(name+" deadline", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := call(ctx)
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, client.ErrTimeout) {
				t.Fatalf("err = %v, want the caller's context.DeadlineExceeded", err)
			}
		})
	}
	t.Run("default timeout", func(t *testing.T) {
		c := newClient(t, client.WithPrefix(prefix), client.WithTimeout(300*time.Millisecond))
		_, err := c.Attest(context.Background(), client.AttestRequest{ProfileID: "p", Token: client.NewSecret("t")})
		if !errors.Is(err, client.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		_, err = c.SessionJWKS(context.Background())
		if !errors.Is(err, client.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})
}

func checkTransport(t *testing.T, err error, command bool, prefix string) {
	t.Helper()
	var te *client.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("err %v is not a *TransportError", err)
	}
	var e *client.Error
	if errors.As(err, &e) {
		t.Errorf("a transport error is also a refusal: %v", err)
	}
	if !command {
		return
	}
	if !te.Stored || te.Stream != strings.ToUpper(prefix)+"_ATTEST" || te.Sequence == 0 || te.ID == "" {
		t.Errorf("transport error = %+v, want the stream position and id", te)
	}
	if !strings.Contains(te.Error(), "call again with the same id") {
		t.Errorf("message = %q", te.Error())
	}
}

// TestNobodyAnswers: with no stream for commands, or nobody serving a
// service subject, calls fail at once with ErrNoStream or ErrNoResponders
// (never a refusal), instead of waiting for the timeout.
func TestNobodyAnswers(t *testing.T) {
	c := newClient(t, client.WithPrefix("nobody"))
	ctx := testCtx(t)
	start := time.Now()
	_, err := c.Attest(ctx, client.AttestRequest{ProfileID: "p", Token: client.NewSecret("t")})
	if !errors.Is(err, client.ErrNoStream) {
		t.Errorf("Attest: err = %v, want ErrNoStream", err)
	}
	checkTransport(t, err, false, "")
	_, err = c.DeleteUser(ctx, client.DeleteUserCommand{UserID: "u"})
	if !errors.Is(err, client.ErrNoStream) {
		t.Errorf("DeleteUser: err = %v, want ErrNoStream", err)
	}
	_, err = c.Revoke(ctx, client.RevokeRequest{SessionToken: client.NewSecret("tat_st_x")})
	if !errors.Is(err, client.ErrNoResponders) || !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("Revoke: err = %v, want ErrNoResponders", err)
	}
	checkTransport(t, err, false, "")
	_, err = c.AdminRevoke(ctx, client.AdminRevokeRequest{SessionID: "s"})
	if !errors.Is(err, client.ErrNoResponders) || !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("AdminRevoke: err = %v, want ErrNoResponders", err)
	}
	checkTransport(t, err, false, "")
	_, err = c.GetUser(ctx, "u")
	if !errors.Is(err, client.ErrNoResponders) {
		t.Errorf("GetUser: err = %v, want ErrNoResponders", err)
	}
	for ev, err := range c.Events(ctx, client.EventFilter{StartSeq: 1}) {
		if ev != nil || !errors.Is(err, client.ErrNoStream) {
			t.Errorf("Events: %v, %v; want ErrNoStream", ev, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// TestInboxes: replies come to inboxes of the connection's custom prefix,
// or of WithInboxPrefix; New refuses prefixes the worker never replies to.
func TestInboxes(t *testing.T) {
	f := newFixture(t, newClient(t))
	for name, mk := range map[string]func() *client.Client{
		"nats.CustomInboxPrefix": func() *client.Client {
			c, err := client.New(connect(t, nats.CustomInboxPrefix("_INBOX_app1")))
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		"WithInboxPrefix": func() *client.Client { return newClient(t, client.WithInboxPrefix("_INBOX_app1.")) },
	} {
		t.Run(name, func(t *testing.T) {
			c := mk()
			var inboxes []string
			client.WrapPublish(c, func(next client.PublishFunc) client.PublishFunc {
				return func(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
					inboxes = append(inboxes, m.Header.Get(client.ReplyHeader))
					return next(ctx, m)
				}
			})
			if _, err := c.Attest(testCtx(t), client.AttestRequest{ProfileID: f.profile, Token: token(f.email, nil)}); err != nil {
				t.Fatal(err)
			}
			if len(inboxes) != 1 || !strings.HasPrefix(inboxes[0], "_INBOX_app1.") || len(inboxes[0]) < len("_INBOX_app1.")+22 {
				t.Fatalf("inboxes = %v", inboxes)
			}
			if _, err := c.SessionJWKS(testCtx(t)); err != nil {
				t.Fatalf("SessionJWKS through the inbox: %v", err)
			}
		})
	}

	nc := connect(t)
	for name, opts := range map[string][]client.Option{
		"inbox under the prefix":     {client.WithInboxPrefix("tat.inbox")},
		"inbox is the prefix":        {client.WithInboxPrefix("tat")},
		"system inbox":               {client.WithInboxPrefix("$SYS.x")},
		"wildcard inbox":             {client.WithInboxPrefix("_INBOX.*")},
		"bad prefix":                 {client.WithPrefix("tat.>")},
		"empty prefix":               {client.WithPrefix("")},
		"bad app":                    {client.WithApp("billing app")},
		"app with an empty token":    {client.WithApp("billing..eu")},
		"prefix holding the inboxes": {client.WithPrefix("_INBOX")},
	} {
		if _, err := client.New(nc, opts...); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := client.New(connect(t, nats.CustomInboxPrefix("tat.replies"))); err == nil {
		t.Error("New accepted a connection whose inboxes are under the prefix")
	}
	if _, err := client.New(nil); err == nil {
		t.Error("New accepted a nil connection")
	}
}
