package inspect

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// Charts are SVG written here by hand: a line chart, grouped bars and a
// funnel are a few dozen lines each, need no dependency and no script, and
// the same markup serves the live viewer and the static report. Every
// label is escaped.

// Series is one line or one colour of bars.
type Series struct {
	Name   string
	Values []float64
}

var palette = []string{"#2f6fb3", "#d9822b", "#3a9a5b", "#b33d3d", "#7a5bb3", "#5b8f99", "#a68a2e", "#c2528a"}

const (
	chartW, chartH = 640, 280
	padL, padR     = 56, 16
	padT, padB     = 34, 56
)

func esc(s string) string { return html.EscapeString(s) }

func fnum(x float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.1f", x), "0"), ".")
}

type svg struct{ strings.Builder }

func (b *svg) f(format string, args ...any) { fmt.Fprintf(&b.Builder, format, args...) }

func (b *svg) open(title, class string) {
	b.f(`<svg class="chart %s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		esc(class), chartW, chartH, chartW, chartH, esc(title))
	b.f(`<title>%s</title><text class="chart-title" x="%d" y="20">%s</text>`, esc(title), padL, esc(title))
}

// yAxis draws horizontal grid lines for [0, top] and returns the mapping.
func (b *svg) yAxis(top float64, format func(float64) string) func(float64) float64 {
	plotH := float64(chartH - padT - padB)
	y := func(v float64) float64 { return float64(chartH-padB) - v/top*plotH }
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		b.f(`<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padL, chartW-padR, y(v), y(v))
		b.f(`<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-6, y(v)+4, esc(format(v)))
	}
	return y
}

func (b *svg) legend(series []Series) {
	x := padL
	for i, s := range series {
		b.f(`<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text class="legend" x="%d" y="%d">%s</text>`,
			x, chartH-16, palette[i%len(palette)], x+14, chartH-7, esc(s.Name))
		x += 24 + 7*len([]rune(s.Name))
	}
}

// LineChart draws series over categorical x labels (K = 1, 2, 4, ...),
// with y from 0 to top (1 for rates: shown as percent).
func LineChart(title string, xs []string, series []Series, top float64) template.HTML {
	var b svg
	b.open(title, "line")
	format := fnum
	if top == 1 {
		format = func(v float64) string { return fnum(100*v) + "%" }
	}
	y := b.yAxis(top, format)
	plotW := float64(chartW - padL - padR)
	x := func(i int) float64 {
		if len(xs) == 1 {
			return float64(padL) + plotW/2
		}
		return float64(padL) + 12 + float64(i)*(plotW-24)/float64(len(xs)-1)
	}
	for i, l := range xs {
		b.f(`<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(i), chartH-padB+16, esc(l))
	}
	for si, s := range series {
		c := palette[si%len(palette)]
		var pts []string
		for i, v := range s.Values {
			if i < len(xs) && !math.IsNaN(v) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
			}
		}
		b.f(`<polyline class="series" fill="none" stroke="%s" stroke-width="2" points="%s"/>`, c, strings.Join(pts, " "))
		for i, v := range s.Values {
			if i < len(xs) && !math.IsNaN(v) {
				b.f(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s %s: %s</title></circle>`, x(i), y(v), c, esc(s.Name), esc(xs[i]), esc(format(v)))
			}
		}
	}
	b.legend(series)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// BarChart draws grouped bars: one group per label, one bar per series.
// link, when not nil, makes a bar a link (series index, label index).
func BarChart(title string, labels []string, series []Series, top float64, link func(s, i int) string) template.HTML {
	var b svg
	b.open(title, "bar")
	format := fnum
	if top == 1 {
		format = func(v float64) string { return fnum(100*v) + "%" }
	}
	if top <= 0 {
		top = 1
		for _, s := range series {
			for _, v := range s.Values {
				top = math.Max(top, v)
			}
		}
		top = niceStep(top/4) * 4
		format = func(v float64) string { return fnum(v) }
	}
	y := b.yAxis(top, format)
	plotW := float64(chartW - padL - padR)
	gw := plotW / float64(max(len(labels), 1))
	bw := gw * 0.8 / float64(max(len(series), 1))
	rotate := len(labels) > 8
	for i, l := range labels {
		cx := float64(padL) + gw*(float64(i)+0.5)
		if rotate {
			b.f(`<text class="tick" x="%.1f" y="%d" text-anchor="end" transform="rotate(-35 %.1f %d)">%s</text>`, cx, chartH-padB+14, cx, chartH-padB+14, esc(clip(l, 18)))
		} else {
			b.f(`<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, cx, chartH-padB+16, esc(clip(l, 18)))
		}
		for si, s := range series {
			if i >= len(s.Values) {
				continue
			}
			v := s.Values[i]
			x0 := float64(padL) + gw*float64(i) + gw*0.1 + bw*float64(si)
			bar := fmt.Sprintf(`<rect class="barrect" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
				x0, y(v), math.Max(bw-1, 1), math.Max(float64(chartH-padB)-y(v), 0), palette[si%len(palette)], esc(s.Name), esc(l), esc(format(v)))
			if link != nil {
				if href := link(si, i); href != "" {
					bar = fmt.Sprintf(`<a class="barlink" href="%s">%s</a>`, esc(href), bar)
				}
			}
			b.WriteString(bar)
		}
	}
	if len(series) > 1 || (len(series) == 1 && series[0].Name != "") {
		if !rotate {
			b.legend(series)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// FunnelStep is one bar of a funnel.
type FunnelStep struct {
	Label        string
	Out, Removed int
	Link         string // where the removed rows of the step are shown; "" for none
}

// FunnelChart draws the rows left after each step (and those removed) as
// horizontal bars.
func FunnelChart(title string, steps []FunnelStep) template.HTML {
	var b svg
	rowH := 26
	h := padT + rowH*len(steps) + 30
	b.f(`<svg class="chart funnel" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		chartW, h, chartW, h, esc(title))
	b.f(`<title>%s</title><text class="chart-title" x="8" y="20">%s</text>`, esc(title), esc(title))
	top := 1
	for _, s := range steps {
		top = max(top, s.Out+s.Removed)
	}
	labelW := 170
	plotW := float64(chartW - labelW - 90)
	for i, s := range steps {
		y := padT + i*rowH
		keep := float64(s.Out) / float64(top) * plotW
		rem := float64(s.Removed) / float64(top) * plotW
		b.f(`<text class="tick" x="%d" y="%d" text-anchor="end">%s</text>`, labelW-6, y+15, esc(clip(s.Label, 24)))
		b.f(`<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %d kept</title></rect>`, labelW, y+2, keep, rowH-6, palette[0], esc(s.Label), s.Out)
		removed := fmt.Sprintf(`<rect class="removed" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %d removed</title></rect>`,
			float64(labelW)+keep, y+2, rem, rowH-6, palette[3], esc(s.Label), s.Removed)
		if s.Link != "" && s.Removed > 0 {
			removed = fmt.Sprintf(`<a class="barlink" href="%s">%s</a>`, esc(s.Link), removed)
		}
		b.WriteString(removed)
		b.f(`<text class="tick" x="%.1f" y="%d">%d (−%d)</text>`, float64(labelW)+keep+rem+4, y+15, s.Out, s.Removed)
	}
	b.f(`<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text class="legend" x="%d" y="%d">kept</text>`, labelW, h-16, palette[0], labelW+14, h-7)
	b.f(`<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text class="legend" x="%d" y="%d">removed</text>`, labelW+60, h-16, palette[3], labelW+74, h-7)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// clip shortens s to n runes with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
