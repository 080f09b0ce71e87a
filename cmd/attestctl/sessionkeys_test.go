package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/tat-worker/attest/client"
)

// TestKeysRotateAndList: "keys rotate" publishes {"change_id","op":"rotate"}
// to <prefix>.keys.commands with the change_id as its Nats-Msg-Id and
// prints the one reply; "keys list" asks <prefix>.reads.keys.list and
// prints the keys as a table.
func TestKeysRotateAndList(t *testing.T) {
	w := startFakeWorker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := w.js.CreateStream(ctx, jetstream.StreamConfig{Name: "TAT_KEYS", Subjects: []string{"tat.keys.commands"}})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "worker"})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(w.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	reads, err := micro.AddService(w.nc, micro.Config{Name: "tat-reads", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reads.Stop() })
	listed := `{"status_code":200,"keys":[{"kid":"tat-a","number":1,"state":"signing"}]}`
	if err := reads.AddGroup("tat.reads").AddEndpoint("keys_list", micro.HandlerFunc(func(r micro.Request) {
		if string(r.Data()) != `{}` {
			_ = r.Respond([]byte(`{"status_code":400}`))
			return
		}
		_ = r.Respond([]byte(listed))
	}), micro.WithEndpointSubject("keys.list")); err != nil {
		t.Fatal(err)
	}
	if err := w.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCLI(t, "keys", "rotate", "-nats", w.url, "-change-id", "rot-1", "-json")
	var res client.KeyRotationResult
	if code != exitOK || json.Unmarshal([]byte(stdout), &res) != nil || res.StatusCode != 200 || res.ChangeID != "rot-1" {
		t.Fatalf("rotate: exit %d: %s%s", code, stdout, stderr)
	}
	r := w.next(t)
	if r.subject != "tat.keys.commands" || string(r.data) != `{"change_id":"rot-1","op":"rotate"}` || r.header.Get(jetstream.MsgIDHeader) != "rot-1" {
		t.Errorf("rotate sent %s %s %v", r.subject, r.data, r.header)
	}

	// Without -change-id: a random id, also the Nats-Msg-Id.
	if code, _, stderr := runCLI(t, "keys", "rotate", "-nats", w.url); code != exitOK {
		t.Fatalf("rotate: exit %d: %s", code, stderr)
	}
	r = w.next(t)
	var cmd struct {
		ChangeID string `json:"change_id"`
		Op       string `json:"op"`
	}
	if err := json.Unmarshal(r.data, &cmd); err != nil || len(cmd.ChangeID) != 32 || cmd.Op != "rotate" || r.header.Get(jetstream.MsgIDHeader) != cmd.ChangeID {
		t.Errorf("rotate without -change-id sent %s %v", r.data, r.header)
	}
	if code, _, _ := runCLI(t, "keys", "rotate", "-nats", w.url, "-change-id", "not valid"); code != exitUsage {
		t.Errorf("a bad -change-id: exit %d, want %d", code, exitUsage)
	}

	code, stdout, stderr = runCLI(t, "keys", "list", "-nats", w.url)
	if code != exitOK || stdout != "KID    NUMBER  STATE    PUBLISHED  SIGNS FROM  SIGNS UNTIL  RETIRES\ntat-a  1       signing  -          -           -            -\n" {
		t.Fatalf("list: exit %d: %q%s", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "keys", "list", "-nats", w.url, "-prefix", "other")
	if code != exitFailure || !strings.Contains(stderr, "nobody answers on other.reads.keys.list") {
		t.Errorf("no service: exit %d: %s", code, stderr)
	}
}
