package main

import (
	"fmt"
	"strings"
	"time"
)

// killResult is the kill phase: a second worker joins the first, requests
// go at a fixed rate, and the first worker is killed with SIGKILL halfway.
// The requests sent before the kill that had no reply then were in flight
// in one of the workers (or waiting in the stream); recovery is the time
// from the kill to the last of their replies, which for the killed
// worker's messages is about TAT_ACK_WAIT after its last keep-alive.
type killResult struct {
	Ran      bool
	Rate     float64
	Requests int
	Held     int           // sent before the kill, replied after it
	Recovery time.Duration // kill to the last reply of those
	Missing  int           // never replied (all requests)
	Failed   int
	AckWait  string
	Load     string

	survivor *proc
}

func killPhase(o options, d *driver, is *issuer, run, profile string, env []string, w *proc, rate float64, seq func(from, n int) []int) killResult {
	res := killResult{Ran: true, AckWait: "default"}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "TAT_ACK_WAIT="); ok && v != "" {
			res.AckWait = v
		}
	}
	addr := freeAddr()
	env2 := append(append([]string{}, env...), "TAT_HTTP_ADDR="+addr)
	w2, err := startProc("attestd-2", env2, nil, o.attestd)
	if err != nil {
		fatalf("%v", err)
	}
	if _, err := waitReady(w2, "http://"+addr+"/readyz", 10*time.Minute); err != nil {
		fatalf("second worker: %v", err)
	}
	res.survivor = w2
	if rate <= 0 {
		rate = 100
	}
	const seconds = 10.0
	n := int(rate * seconds)
	fmt.Printf("preparing %d tokens for the kill phase (%.0f requests/s over %.0f s, two workers, SIGKILL of the first at %.0f s)\n", n, rate, seconds, seconds/2)
	reqs := is.attestPayloads(run, profile, seq(0, n))
	l0 := loadAvg()
	p := d.newPhase(len(reqs), 0)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	killAt := start.Add(time.Duration(seconds / 2 * float64(time.Second)))
	var killed time.Time
	for i, b := range reqs {
		at := start.Add(time.Duration(i) * interval)
		if killed.IsZero() && !at.Before(killAt) {
			_ = w.cmd.Process.Kill()
			killed = time.Now()
		}
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		d.publish(p, i, b)
	}
	select {
	case <-p.all:
	case <-time.After(2 * time.Minute):
	}
	<-w.done
	res.Rate, res.Requests, res.Load = rate, len(reqs), l0+" -> "+loadAvg()
	k := killed.UnixNano()
	for i := range p.sent {
		g := p.got[i].Load()
		switch {
		case g == 0:
			res.Missing++
			continue
		case !p.ok[i].Load():
			res.Failed++
		}
		if p.sent[i].Load() < k && g > k {
			res.Held++
			res.Recovery = max(res.Recovery, time.Duration(g-k))
		}
	}
	fmt.Printf("kill: %d requests at %.0f/s; %d sent before the SIGKILL were answered after it, the last %v after the kill (TAT_ACK_WAIT %s); %d failed, %d missing; load %s\n",
		res.Requests, rate, res.Held, res.Recovery.Round(time.Millisecond), res.AckWait, res.Failed, res.Missing, res.Load)
	return res
}
