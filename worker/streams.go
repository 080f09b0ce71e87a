package worker

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Consumer names.
const (
	attestConsumer = "attest-workers"
	adminConsumer  = "admin-appliers"
)

type streams struct {
	attest, admin, events, deadletter string
}

// adminSubjects are the subjects of the admin stream, one per command
// kind: the stream takes these and the worker routes by them.
func (c Config) adminSubjects() (profiles, users, keys string) {
	return c.subject("profiles", "commands"), c.subject("users", "commands"), c.subject("keys", "commands")
}

func (c Config) streams() streams {
	return streams{
		attest:     c.streamName("ATTEST"),
		admin:      c.streamName("ADMIN"),
		events:     c.streamName("EVENTS"),
		deadletter: c.streamName("DEADLETTER"),
	}
}

// ensureStreams creates or updates the streams and the durable consumers
// (contract section 2). Attest requests are a work queue shared by every
// worker; admin commands are applied one at a time in stream order (one
// message in flight for the whole fleet); events are kept for replay.
func ensureStreams(ctx context.Context, js jetstream.JetStream, c Config) (attest, admin jetstream.Consumer, err error) {
	n := c.streams()
	profiles, users, keys := c.adminSubjects()
	cfgs := []jetstream.StreamConfig{
		{
			Name: n.attest, Subjects: []string{c.subject("attest", "requests"), c.subject("attest", "requests", ">")},
			Retention: jetstream.WorkQueuePolicy, MaxAge: c.AttestMaxAge, MaxBytes: c.StreamMaxSize,
			Storage: jetstream.FileStorage, Replicas: c.Replicas, Duplicates: c.CommandDedupWindow,
			MaxMsgSize: 1 << 20, Description: "attest requests: a work queue shared by the workers",
		},
		{
			Name: n.admin, Subjects: []string{profiles, users, keys},
			Retention: jetstream.WorkQueuePolicy, MaxAge: c.AdminMaxAge, MaxBytes: c.StreamMaxSize,
			Storage: jetstream.FileStorage, Replicas: c.Replicas, Duplicates: c.CommandDedupWindow,
			MaxMsgSize: 1 << 20, Description: "profile, user and key commands, applied in stream order",
		},
		{
			Name: n.events, Subjects: []string{c.subject("events", ">")},
			Retention: jetstream.LimitsPolicy, MaxAge: c.EventsMaxAge, MaxBytes: c.EventsMaxSize,
			Storage: jetstream.FileStorage, Replicas: c.Replicas, Duplicates: c.DedupWindow,
			Description: "one event for every outcome: the audit log",
		},
		{
			Name: n.deadletter, Subjects: []string{c.subject("deadletter", ">")},
			Retention: jetstream.LimitsPolicy, MaxAge: c.EventsMaxAge, MaxBytes: c.EventsMaxSize,
			Storage: jetstream.FileStorage, Replicas: c.Replicas, Duplicates: c.DedupWindow,
			Description: "commands that exhausted their deliveries, with the reason (never the payload)",
		},
	}
	for _, sc := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, nil, fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	attest, err = js.CreateOrUpdateConsumer(ctx, n.attest, jetstream.ConsumerConfig{
		Durable: attestConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: c.AckWait,
		MaxDeliver: -1, MaxAckPending: 4096, Replicas: c.Replicas,
		Description: "attest workers",
	})
	if err != nil {
		return nil, nil, fmt.Errorf("consumer %s: %w", attestConsumer, err)
	}
	admin, err = js.CreateOrUpdateConsumer(ctx, n.admin, jetstream.ConsumerConfig{
		Durable: adminConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: c.AckWait,
		MaxDeliver: -1, MaxAckPending: 1, Replicas: c.Replicas,
		Description: "profile and user appliers (one in flight: stream order)",
	})
	if err != nil {
		return nil, nil, fmt.Errorf("consumer %s: %w", adminConsumer, err)
	}
	return attest, admin, nil
}
