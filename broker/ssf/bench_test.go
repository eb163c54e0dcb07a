package ssf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/broker/ssf/ssftest"
	"github.com/writhq/writ/wire/ssfwire"
)

// BenchmarkFanout measures the transmitter alone: the time from a revoke
// call returning to the last of n long-polling streams holding its SET,
// with each stream its own receiver (receivers=n) or all of them replicas
// of one resource server (replicas=n, the revoke-guards bench's shape).
// The receivers do not verify signatures, so this is the broker's share of
// revoke → refusal; a guard adds one SET verification (~60µs) on its own
// machine.
func BenchmarkFanout(b *testing.B) {
	for _, bc := range []struct {
		n        int
		replicas bool
	}{{200, false}, {1000, false}, {1000, true}} {
		n := bc.n
		name := fmt.Sprintf("receivers=%d", n)
		if bc.replicas {
			name = fmt.Sprintf("replicas=%d", n)
		}
		b.Run(name, func(b *testing.B) {
			h := ssftest.New(b, ssftest.Options{Transmitter: ssf.Options{MaxStreamsPerReceiver: n}})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			var got atomic.Int64 // receivers that have the latest SET
			var want atomic.Int64
			var mu sync.Mutex
			arrived := sync.NewCond(&mu)
			for i := range n {
				id := fmt.Sprintf("rs-%d", i)
				if bc.replicas {
					id = "rs-0"
				}
				hc := h.Client(id)
				c := createStream(b, h, hc)
				wg.Add(1)
				go func() {
					defer wg.Done()
					pollLoop(ctx, hc, c.Delivery.EndpointURL, func(txn int64) {
						if txn == want.Load() {
							got.Add(1)
							mu.Lock()
							arrived.Broadcast()
							mu.Unlock()
						}
					})
				}()
			}
			time.Sleep(200 * time.Millisecond) // every receiver waiting in a long poll
			var lat []time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				tok := h.Mint(ssftest.Agent, "", "contents:read")
				got.Store(0)
				want.Store(int64(h.Svc.LastSignalSeq() + 1))
				b.StartTimer()
				h.Revoke(tok.Grant.ID, "bench")
				start := time.Now()
				mu.Lock()
				for got.Load() < int64(n) {
					arrived.Wait()
				}
				mu.Unlock()
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

func createStream(b *testing.B, h *ssftest.Harness, hc *http.Client) ssfwire.StreamConfig {
	resp, err := hc.Post(h.URL+"/ssf/stream", "application/json", bytes.NewReader([]byte(`{}`)))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var c ssfwire.StreamConfig
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("create stream: %d %v", resp.StatusCode, err)
	}
	return c
}

// pollLoop long-polls, acknowledging what it got, and calls seen with the
// txn of each SET, until ctx ends.
func pollLoop(ctx context.Context, hc *http.Client, url string, seen func(txn int64)) {
	req := ssfwire.PollRequest{ReturnImmediately: true}
	for ctx.Err() == nil {
		body, _ := json.Marshal(req)
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(r)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var pr ssfwire.PollResponse
		if json.Unmarshal(b, &pr) != nil {
			continue
		}
		req = ssfwire.PollRequest{}
		for jti := range pr.Sets {
			req.Ack = append(req.Ack, jti)
			seen(txnOf(jti))
		}
	}
}

// txnOf returns the feed seq a feed SET's jti (stream.seq) ends with.
func txnOf(jti string) int64 {
	n, _ := strconv.ParseInt(jti[strings.LastIndexByte(jti, '.')+1:], 10, 64)
	return n
}
