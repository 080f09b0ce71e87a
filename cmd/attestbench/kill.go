package main

import (
	"bufio"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
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
	Median   time.Duration // kill to the median reply of those
	Missing  int           // never replied (all requests)
	Failed   int
	Retries  float64 // the survivor's NakWithDelay during the phase (tat_retries_total)
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
	var warnMu sync.Mutex
	var warns []string // the survivor's first warnings and errors, to say why a recovery took long
	w2, err := startProc("attestd-2", env2, func(line string) {
		if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
			warnMu.Lock()
			if len(warns) < 10 {
				warns = append(warns, truncate(line, 400))
			}
			warnMu.Unlock()
		}
	}, o.attestd)
	if err != nil {
		fatalf("%v", err)
	}
	if _, err := waitReady(w2, "http://"+addr+"/readyz", 10*time.Minute); err != nil {
		fatalf("second worker: %v", err)
	}
	res.survivor = w2
	metrics2 := "http://" + addr + "/metrics"
	r0, _ := metricSum(metrics2, "tat_retries_total")
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
	r1, _ := metricSum(metrics2, "tat_retries_total")
	res.Retries = r1 - r0
	res.Rate, res.Requests, res.Load = rate, len(reqs), l0+" -> "+loadAvg()
	k := killed.UnixNano()
	var after []float64
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
			after = append(after, float64(g-k))
		}
	}
	sort.Float64s(after)
	res.Median = time.Duration(percentile(after, .5))
	fmt.Printf("kill: %d requests at %.0f/s; %d sent before the SIGKILL were answered after it, half within %v, the last %v after the kill (TAT_ACK_WAIT %s); %d failed, %d missing; the survivor retried %.0f times; load %s\n",
		res.Requests, rate, res.Held, res.Median.Round(time.Millisecond), res.Recovery.Round(time.Millisecond), res.AckWait, res.Failed, res.Missing, res.Retries, res.Load)
	warnMu.Lock()
	for _, l := range warns {
		fmt.Println("  survivor:", l)
	}
	warnMu.Unlock()
	return res
}

// metricSum is the sum of a metric's samples, labelled or not (metric reads
// an unlabelled one only).
func metricSum(url, name string) (float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	r, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}
