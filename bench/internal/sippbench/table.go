package sippbench

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// Table is a results table in Markdown, rows grouped by section (in
// increasing order) in the order they were added.
type Table struct {
	// Header is the column titles; the default is what, figure,
	// vs baseline, notes.
	Header [4]string
	rows   []row
}

type row struct {
	section                   int
	what, figure, ratio, note string
}

// Add adds a row to section.
func (tb *Table) Add(section int, what, figure, ratio, note string) {
	tb.rows = append(tb.rows, row{section, what, figure, ratio, note})
}

// String renders the table.
func (tb *Table) String() string {
	rows := append([]row(nil), tb.rows...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].section < rows[j].section })
	h := tb.Header
	if h == [4]string{} {
		h = [4]string{"what", "figure", "vs baseline", "notes"}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n|---|---|---|---|\n", h[0], h[1], h[2], h[3])
	for _, r := range rows {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", r.what, r.figure, r.ratio, r.note)
	}
	return sb.String()
}

// Percentile returns the q-quantile of xs (nearest rank); NaN for none.
func Percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Slope is the least-squares slope of ys over xs.
func Slope(xs, ys []float64) float64 {
	var n, sx, sy, sxx, sxy float64
	for i := range xs {
		n++
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// Loadavg is the machine's 1-minute load average, for the notes: other
// work on the machine shows in it.
func Loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
