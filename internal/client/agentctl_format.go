package client

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// Output of `hivenet flows` and `hivenet agent-stats`.

// FormatAgentFlow renders a flow on one line, as ovs-dpctl dump-flows
// does: the match, the statistics, then the actions. "used" is how long
// ago the flow last matched a packet, "never" before its first:
//
//	in_port=1 eth_dst=fa:16:3e:00:00:02 ip ip_dst=10.0.0.12 packets:4 bytes:392 used:0.84s actions:tunnel(10.250.0.2,key=102)
func FormatAgentFlow(f AgentFlow) string {
	used := "never"
	if f.Packets > 0 {
		used = formatUsed(time.Duration(f.IdleMS) * time.Millisecond)
	}
	match := f.Match
	if match == "" {
		match = "any"
	}
	return fmt.Sprintf("%s packets:%d bytes:%d used:%s actions:%s", match, f.Packets, f.Bytes, used, f.Actions)
}

// formatUsed prints d in seconds with two decimals (ovs-dpctl's "0.532s"),
// without decimals from a minute on.
func formatUsed(d time.Duration) string {
	if d >= time.Minute {
		return fmt.Sprintf("%ds", int64(d/time.Second))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// WriteAgentFlows writes flows as format "table" (one FormatAgentFlow line
// each) or "json" (the array, indented).
func WriteAgentFlows(w io.Writer, format string, flows []AgentFlow) error {
	switch format {
	case "json":
		if flows == nil {
			flows = []AgentFlow{}
		}
		return writeIndented(w, flows)
	case "table":
		for _, f := range flows {
			if _, err := fmt.Fprintln(w, FormatAgentFlow(f)); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("output format %q: want table or json", format)
}

// WriteAgentStats writes s as format "table" (one "name value" line per
// counter, datapath counters prefixed "datapath.") or "json".
func WriteAgentStats(w io.Writer, format string, s AgentStats) error {
	switch format {
	case "json":
		return writeIndented(w, s)
	case "table":
		var rows [][2]string
		flattenJSON(reflect.ValueOf(s), "", &rows)
		width := 0
		for _, r := range rows {
			width = max(width, len(r[0]))
		}
		var b strings.Builder
		for _, r := range rows {
			fmt.Fprintf(&b, "%-*s  %s\n", width, r[0], r[1])
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	return fmt.Errorf("output format %q: want table or json", format)
}

// flattenJSON appends the fields of struct v as (json name, value) rows,
// in declaration order, nested structs as "prefix.name" (a "_stats"
// suffix dropped from the prefix).
func flattenJSON(v reflect.Value, prefix string, rows *[][2]string) {
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fv := v.Field(i)
		switch x := fv.Interface().(type) {
		case time.Time:
			*rows = append(*rows, [2]string{prefix + name, x.Format(time.RFC3339)})
		default:
			if fv.Kind() == reflect.Struct {
				flattenJSON(fv, prefix+strings.TrimSuffix(name, "_stats")+".", rows)
				continue
			}
			*rows = append(*rows, [2]string{prefix + name, fmt.Sprint(x)})
		}
	}
}

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
