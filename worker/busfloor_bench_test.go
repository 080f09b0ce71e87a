package worker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
	"github.com/tat-worker/attest/worker/embedded"
)

// BenchmarkBusFloor measures the NATS work one attest request costs on the
// embedded default with no worker logic around it (no decoding, token
// check, store, signing or logging): the floor under BenchmarkAttest's
// cpu-µs/op. It repeats, in one process, the traffic of one successful
// attest with a new session:
//
//   - the server: an in-process nats-server on TCP loopback with file
//     storage in a temporary directory (as workertest.NewEnv starts it),
//     and the streams and consumers of ensureStreams with Defaults();
//   - the client (publishAll in security_test.go, as BenchmarkAttest uses
//     it): batches of 200 requests, each batch under a fresh inbox prefix
//     with one ChanSubscribe on prefix.*; each request a JetStream
//     PublishMsgAsync to <prefix>.attest.requests with Tat-Reply-To
//     prefix.i and no Nats-Msg-Id, every PubAck awaited, then every reply;
//   - the worker, on a connection of its own: the attest consumer consumed
//     as runner.start does (PullMaxMessages(pullBatch(slots)), PullExpiry
//     5 s, one goroutine per message under a semaphore of slots); per
//     message Metadata, its event published by eventPublisher.publish
//     (PublishMsgAsync, the caller waiting for its own ack) with
//     Nats-Msg-Id, Content-Type and Tat-Signature, the reply on core NATS
//     to Tat-Reply-To, then Ack; the admin consumer consumed idle as the
//     admin runner does;
//   - the feed: an ordered consumer on the events stream from its end, as
//     feed.follow, reading each event's metadata and signature header (what
//     feed.apply does before it verifies and decodes).
//
// Sizes are those of BenchmarkAttest/session: the request (the test
// issuer's ES256 token, pre-signed) 525 bytes, the tat.session.created
// event about 1.3 KB (a real domain event, one for all messages; the
// Nats-Msg-Id differs), the reply about 2.3 KB (user, session, session
// token and a session JWT of the real length).
//
// Not mirrored: the keep-alive ticker per message (it sends InProgress
// only after AckWait/3), the sessions and reads services' idle
// subscriptions, and the client's own work (BenchmarkAttest signs a token,
// encodes a request and decodes a reply per request, in the same process).
// The time runs until every reply is in and the feed has every event;
// pulls/op counts the attest consumer's pull requests with the
// subscription BenchmarkAttest uses. Sub-benchmarks: slots=128
// (TAT_WORKER_CONCURRENCY's default) and slots=16 (workertest's Config,
// which BenchmarkAttest runs). Run:
//
//	go test -run '^$' -bench BenchmarkBusFloor -benchtime 4000x ./worker/
func BenchmarkBusFloor(b *testing.B) {
	for _, slots := range []int{Defaults().Concurrency, 16} {
		b.Run(fmt.Sprint("slots=", slots), func(b *testing.B) { busFloor(b, slots) })
	}
}

func busFloor(b *testing.B, slots int) {
	ctx := context.Background()
	cfg := Defaults()
	cfg.Concurrency = slots
	ns, err := embedded.StartNATS(embedded.NATSOptions{Addr: "127.0.0.1:0", StoreDir: b.TempDir() + "/nats"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ns.Shutdown)
	connect := func() *nats.Conn { // workertest's Env.Connect
		nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	cnc, wnc := connect(), connect()
	cjs, _ := jetstream.New(cnc)
	wjs, _ := jetstream.New(wnc)
	attest, admin, err := ensureStreams(ctx, wjs, cfg)
	if err != nil {
		b.Fatal(err)
	}
	request, ev, reply := busFloorPayloads(b, cfg)
	evSubject := cfg.SubjectPrefix + ".events." + ev.SubjectSuffix()
	evBody, _ := ev.Encode()
	sig := newSigner(make([]byte, 32), eventSigningLabel).sign([]byte(evSubject), evBody)
	pub := &eventPublisher{js: wjs, prefix: cfg.SubjectPrefix}

	// The feed: every event, from the stream's end on.
	var fedN atomic.Int64
	fed := make(chan struct{})
	es, err := wjs.Stream(ctx, cfg.streams().events)
	if err != nil {
		b.Fatal(err)
	}
	oc, err := wjs.OrderedConsumer(ctx, cfg.streams().events, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: es.CachedInfo().State.LastSeq + 1})
	if err != nil {
		b.Fatal(err)
	}
	fc, err := oc.Consume(func(m jetstream.Msg) {
		if _, err := m.Metadata(); err != nil || m.Headers().Get(SignatureHeader) == "" {
			b.Errorf("event: %v", err)
		}
		if fedN.Add(1) == int64(b.N) {
			close(fed)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fc.Stop)

	// The worker: the admin runner idle, the attest runner per message.
	ac, err := admin.Consume(func(jetstream.Msg) {}, jetstream.PullMaxMessages(pullBatch(1)), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ac.Stop)
	sem := make(chan struct{}, slots)
	cc, err := attest.Consume(func(m jetstream.Msg) {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			md, err := m.Metadata()
			if err != nil {
				b.Error(err)
				return
			}
			msg := &nats.Msg{Subject: evSubject, Data: evBody, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("evt-%036d", md.Sequence.Stream)) // an event id's length
			msg.Header.Set("Content-Type", "application/cloudevents+json")
			msg.Header.Set(SignatureHeader, sig)
			if err := pub.publish(ctx, msg); err != nil {
				b.Error(err)
				return
			}
			if err := wnc.Publish(m.Headers().Get(ReplyHeader), reply); err != nil {
				b.Error(err)
			}
			_ = m.Ack()
		}()
	}, jetstream.PullMaxMessages(pullBatch(slots)), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cc.Stop)

	// BenchmarkAttest's count of the attest consumer's pull requests.
	var pulls atomic.Int64
	ps, err := cnc.Subscribe("$JS.API.CONSUMER.MSG.NEXT.*."+attestConsumer, func(*nats.Msg) { pulls.Add(1) })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ps.Unsubscribe() })

	const batch = 200
	subject := cfg.subject("attest", "requests")
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		busFloorBatch(b, cnc, cjs, subject, request, n)
		done += n
	}
	select {
	case <-fed:
	case <-time.After(30 * time.Second):
		b.Fatalf("the feed has %d of %d events", fedN.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(pulls.Load())/float64(b.N), "pulls/op")
}

// busFloorBatch is publishAll without the JSON: n requests published
// asynchronously, every PubAck, then every reply.
func busFloorBatch(b *testing.B, nc *nats.Conn, js jetstream.JetStream, subject string, body []byte, n int) {
	prefix := nats.NewInbox()
	replies := make(chan *nats.Msg, n)
	sub, err := nc.ChanSubscribe(prefix+".*", replies)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acks := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
		m.Header.Set(ReplyHeader, prefix+"."+strconv.Itoa(i))
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			b.Fatal(err)
		}
		acks = append(acks, f)
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatalf("publish: %v", err)
		case <-ctx.Done():
			b.Fatal("publish not acknowledged")
		}
	}
	for got := 0; got < n; got++ {
		select {
		case <-replies:
		case <-ctx.Done():
			b.Fatalf("%d of %d replies", got, n)
		}
	}
}

// busFloorToken is an ES256 token as workertest's Issuer signs it for
// BenchmarkAttest (iss, aud, email, jti, iat, nbf, exp): nobody checks it.
const busFloorToken = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJteS1hcHAiLCJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSIsImV4cCI6MTc5NjE3NTE0NCwiaWF0IjoxNzk2MTc0NTQ0LCJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbS8iLCJqdGkiOiJmZDRhMzZmNC02MWY2LTRkZjItODQxNi05NmFkMDVjNTQ2MjYiLCJuYmYiOjE3OTYxNzQ1NDR9.AfyK2NPAHYW77rhvYisO26Ya1xm9wXLUMEwVUGmtsJWDhn7D0v_VQ95hsOfey_oesVunc1QZ_N6jyn5Jt_fXCA"

// busFloorPayloads returns an attest request, its tat.session.created
// event and its reply, as BenchmarkAttest/session's worker makes them.
func busFloorPayloads(b *testing.B, cfg Config) (request []byte, ev domain.Event, reply []byte) {
	const id, profile = "fd4a36f4-61f6-4df2-8416-96ad05c54626", "trusted-auth-token-profile-b75a0557-1168-8c67-8373-3027990fba6e"
	now := time.Now().UTC()
	t := now.Truncate(time.Second)
	request, _ = json.Marshal(map[string]any{"request_id": id, "profile_id": profile, "token": busFloorToken, "session_duration_minutes": 60})
	u := domain.User{UserSpec: domain.UserSpec{UserID: "user-347c7caf-03a8-8049-9f1a-d6aea0a306df",
		Emails: []domain.UserEmail{{Email: "ada@example.com"}}, Status: domain.UserActive, TrustedMetadata: json.RawMessage("{}")},
		Version: 1, CreatedAt: t, UpdatedAt: t}
	s := domain.Session{SessionID: "session-4a683d20-9b4b-8db9-b812-5ee8287d0d2f", UserID: u.UserID,
		StartedAt: t, LastAccessedAt: t, ExpiresAt: t.Add(time.Hour), Roles: []string{}, CustomClaims: map[string]any{},
		AuthenticationFactors: []domain.AuthenticationFactor{{Type: domain.FactorTrustedAuthToken, DeliveryMethod: domain.DeliveryTrustedExchange,
			CreatedAt: t, UpdatedAt: t, LastAuthenticatedAt: t, TrustedAuthTokenFactor: &domain.TrustedAuthTokenFactor{TokenID: id, ProfileID: profile}}}}
	sum := sha256.Sum256([]byte(busFloorToken))
	ev, err := domain.NewEvent(domain.EventID("attest", id), domain.EventSessionCreated, s.SessionID, t, handlers.AttestEventData{
		RequestID: id, ProfileID: profile, UserID: u.UserID, TokenID: id, TokenSHA256: hex.EncodeToString(sum[:]),
		Session: &s, SessionRevision: 1, Position: handlers.Position{Stream: cfg.streams().attest, StreamSeq: 1, RequestedAt: now}})
	if err != nil {
		b.Fatal(err)
	}
	// A session JWT's length: header, claims with the session, signature.
	claims, _ := json.Marshal(map[string]any{"aud": "tat", "exp": t.Unix(), "iat": t.Unix(), "iss": cfg.SessionIssuer,
		"nbf": t.Unix(), "sub": u.UserID, "tat_session": s})
	b64 := base64.RawURLEncoding.EncodeToString
	jwt := b64([]byte(`{"alg":"ES256","kid":"tat-LiB3csjXNTK_19HR","typ":"JWT"}`)) + "." + b64(claims) + "." + b64(make([]byte, 64))
	reply, _ = json.Marshal(handlers.AttestReply{StatusCode: 200, RequestID: id, UserID: u.UserID, User: &u, Session: &s,
		SessionToken: "tat_st_" + b64(make([]byte, 32)), SessionJWT: jwt})
	return request, ev, reply
}

// processCPU is the user and system CPU time of this process so far (as
// in bench_test.go, which is package worker_test).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
