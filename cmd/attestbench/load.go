package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// issuer signs trusted tokens with a fresh ES256 key, as a partner's
// identity provider would.
type issuer struct {
	key      *ecdsa.PrivateKey
	iss, aud string
	hdr      string
}

func newIssuer() *issuer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fatalf("key: %v", err)
	}
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT"})
	return &issuer{key: k, iss: "https://bench.example/", aud: "bench", hdr: base64.RawURLEncoding.EncodeToString(hdr)}
}

func (i *issuer) publicPEM() string {
	der, _ := x509.MarshalPKIXPublicKey(&i.key.PublicKey)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func (i *issuer) token(email, jti string, now time.Time) string {
	claims, _ := json.Marshal(map[string]any{"iss": i.iss, "aud": i.aud, "sub": email, "email": email, "jti": jti,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(2 * time.Hour).Unix()})
	input := i.hdr + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, i.key, sum[:])
	if err != nil {
		fatalf("sign: %v", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// attestPayloads makes one attest request per user index in [from, to),
// each with a fresh token and request id, asking for a 60-minute session.
// The signing is spread over every core, before any timing starts.
func (i *issuer) attestPayloads(run, profile string, users []int) [][]byte {
	out := make([][]byte, len(users))
	now := time.Now()
	var wg sync.WaitGroup
	workers := runtime.NumCPU()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < len(users); k += workers {
				id := uuid.NewString()
				email := fmt.Sprintf("u%d-%s@bench.example", users[k], run)
				b, _ := json.Marshal(map[string]any{"request_id": id, "profile_id": profile,
					"token": i.token(email, id, now), "session_duration_minutes": 60})
				out[k] = b
			}
		}()
	}
	wg.Wait()
	return out
}

// driver publishes attest requests with a Tat-Reply-To subject of its own
// per request and times the replies.
type driver struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
	replyTo string // <replyTo>.<phase>.<index>

	phaseN atomic.Int64
	cur    atomic.Pointer[phase]
	pubErr atomic.Int64
}

type phase struct {
	id   int64
	sent []atomic.Int64 // unix nanos at publish
	got  []atomic.Int64 // unix nanos at reply
	ok   []atomic.Bool  // 200 with a session (session_jwt present)
	body []atomic.Pointer[[]byte]
	sem  chan struct{}
	left atomic.Int64
	all  chan struct{}
}

// phaseResult is one phase's numbers.
type phaseResult struct {
	Name      string
	Requests  int
	OK        int // 200 with a new session
	Failed    int // any other reply
	Missing   int // no reply before the deadline
	Elapsed   time.Duration
	Rate      float64 // OK per second over Elapsed
	Latencies []float64
	// Offered is the open-loop rate asked for (0 for a closed loop).
	Offered    float64
	FirstError string
	LoadBefore string
	LoadAfter  string
	WorkerCPU  float64 // seconds
	StackCPU   float64 // seconds (split mode)
	DriverCPU  float64 // seconds
	// Batches and Batched count the worker's grouped insertMany commands
	// and the documents they carried (0 for a worker without batching).
	Batches, Batched float64
}

func newDriver(url, prefix, run string) (*driver, error) {
	nc, err := nats.Connect(url, nats.Name("attestbench"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return nil, err
	}
	d := &driver{nc: nc, js: js, subject: prefix + ".attest.requests", replyTo: "_INBOX.bench_" + run + ".reply"}
	if _, err := nc.Subscribe(d.replyTo+".>", d.onReply); err != nil {
		return nil, err
	}
	return d, nc.Flush()
}

func (d *driver) onReply(m *nats.Msg) {
	now := time.Now().UnixNano()
	rest := strings.TrimPrefix(m.Subject, d.replyTo+".")
	ps, is, _ := strings.Cut(rest, ".")
	p := d.cur.Load()
	if p == nil || ps != strconv.FormatInt(p.id, 10) {
		return
	}
	i, err := strconv.Atoi(is)
	if err != nil || i < 0 || i >= len(p.got) || !p.got[i].CompareAndSwap(0, now) {
		return
	}
	ok := bytes.HasPrefix(m.Data, []byte(`{"status_code":200,`)) && bytes.Contains(m.Data, []byte(`"session_jwt":"`))
	p.ok[i].Store(ok)
	if !ok {
		b := m.Data
		p.body[i].Store(&b)
	}
	if p.sem != nil {
		<-p.sem
	}
	if p.left.Add(-1) == 0 {
		close(p.all)
	}
}

func (d *driver) newPhase(n, inflight int) *phase {
	p := &phase{id: d.phaseN.Add(1), sent: make([]atomic.Int64, n), got: make([]atomic.Int64, n),
		ok: make([]atomic.Bool, n), body: make([]atomic.Pointer[[]byte], n), all: make(chan struct{})}
	if inflight > 0 {
		p.sem = make(chan struct{}, inflight)
	}
	p.left.Store(int64(n))
	if n == 0 {
		close(p.all)
	}
	d.cur.Store(p)
	return p
}

func (d *driver) publish(p *phase, i int, body []byte) {
	msg := &nats.Msg{Subject: d.subject, Data: body, Header: nats.Header{}}
	msg.Header.Set("Tat-Reply-To", d.replyTo+"."+strconv.FormatInt(p.id, 10)+"."+strconv.Itoa(i))
	p.sent[i].Store(time.Now().UnixNano())
	if _, err := d.js.PublishMsgAsync(msg); err != nil {
		d.pubErr.Add(1)
	}
}

// closedLoop keeps inflight requests outstanding: each reply lets the next
// request go. It measures the most the stack sustains.
func (d *driver) closedLoop(name string, reqs [][]byte, inflight int, deadline time.Duration) phaseResult {
	p := d.newPhase(len(reqs), inflight)
	start := time.Now()
	stop := time.After(deadline)
	for i, b := range reqs {
		select {
		case p.sem <- struct{}{}:
		case <-stop:
			return d.result(name, p, start, 0)
		}
		d.publish(p, i, b)
	}
	select {
	case <-p.all:
	case <-stop:
	}
	return d.result(name, p, start, 0)
}

// openLoop sends at a fixed rate whatever the replies do (no coordinated
// omission: a slow reply does not delay the next request).
func (d *driver) openLoop(name string, reqs [][]byte, rate float64, deadline time.Duration) phaseResult {
	p := d.newPhase(len(reqs), 0)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i, b := range reqs {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		d.publish(p, i, b)
	}
	select {
	case <-p.all:
	case <-time.After(deadline):
	}
	r := d.result(name, p, start, rate)
	return r
}

func (d *driver) result(name string, p *phase, start time.Time, offered float64) phaseResult {
	r := phaseResult{Name: name, Requests: len(p.sent), Offered: offered}
	var last int64
	for i := range p.sent {
		g := p.got[i].Load()
		switch {
		case g == 0:
			r.Missing++
			continue
		case p.ok[i].Load():
			r.OK++
			r.Latencies = append(r.Latencies, float64(g-p.sent[i].Load())/1e6)
		default:
			r.Failed++
			if r.FirstError == "" {
				if b := p.body[i].Load(); b != nil {
					r.FirstError = truncate(string(*b), 300)
				}
			}
		}
		last = max(last, g)
	}
	if last > 0 {
		r.Elapsed = time.Unix(0, last).Sub(start)
		r.Rate = float64(r.OK) / r.Elapsed.Seconds()
	}
	sort.Float64s(r.Latencies)
	return r
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// command sends an admin command and waits for its reply.
func (d *driver) command(subject string, payload any) (map[string]any, error) {
	body, _ := json.Marshal(payload)
	inbox := nats.NewInbox()
	sub, err := d.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set("Tat-Reply-To", inbox)
	ctx, cancel := contextTimeout(30 * time.Second)
	defer cancel()
	if _, err := d.js.PublishMsg(ctx, msg); err != nil {
		return nil, err
	}
	m, err := sub.NextMsg(30 * time.Second)
	if err != nil {
		return nil, fmt.Errorf("no reply to %s: %w", subject, err)
	}
	var out map[string]any
	return out, json.Unmarshal(m.Data, &out)
}
