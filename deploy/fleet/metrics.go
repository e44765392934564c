package fleet

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metrics reads p's /metrics (Prometheus text format) into a map from
// sample, as written (name and labels, e.g. `go_goroutines` or
// `dsn_sip_routed_total{method="INVITE",...}`), to value.
func (p *Proc) Metrics() (map[string]float64, error) {
	c := http.Client{Timeout: 3 * time.Second}
	res, err := c.Get("http://" + p.Admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %s", p.Name, res.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("%s /metrics: %q: %w", p.Name, l, err)
		}
		out[l[:i]] = v
	}
	return out, sc.Err()
}

// MetricSum adds up the samples of metric name (all label sets) in m.
func MetricSum(m map[string]float64, name string) float64 {
	var sum float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			sum += v
		}
	}
	return sum
}
