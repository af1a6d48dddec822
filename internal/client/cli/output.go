package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"hivenet/internal/client"
)

// Output formats of -o.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// column is one column of a list table.
type column struct {
	header string
	field  string
	// format turns the field's value into the cell text; nil means
	// formatValue. present is false when the object lacks the field.
	format func(v any, present bool) string
}

// printObject prints one object: a Field/Value table sorted by field, or
// the object as indented JSON.
func printObject(w io.Writer, format string, obj client.Object) error {
	if format == formatJSON {
		return writeJSON(w, obj)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, []string{k, formatValue(obj[k])})
	}
	return writeTable(w, []string{"Field", "Value"}, rows)
}

// printList prints objects as a table of the given columns, or as a JSON
// array of the whole objects.
func printList(w io.Writer, format string, cols []column, objs []client.Object) error {
	if format == formatJSON {
		if objs == nil {
			objs = []client.Object{}
		}
		return writeJSON(w, objs)
	}
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	rows := make([][]string, 0, len(objs))
	for _, o := range objs {
		row := make([]string, len(cols))
		for i, c := range cols {
			v, ok := o[c.field]
			switch {
			case c.format != nil:
				row[i] = c.format(v, ok)
			case ok:
				row[i] = formatValue(v)
			}
		}
		rows = append(rows, row)
	}
	return writeTable(w, headers, rows)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// formatValue renders a JSON value for a table cell the way the OpenStack
// client does: null as None, booleans as True/False, a list of scalars
// joined with ", ", a list of objects one per line, an object as
// key='value' pairs sorted by key.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return v
	case bool:
		if v {
			return "True"
		}
		return "False"
	case json.Number:
		return v.String()
	case []any:
		parts := make([]string, len(v))
		sep := ", "
		for i, e := range v {
			if _, ok := e.(map[string]any); ok {
				sep = "\n"
			}
			parts[i] = formatValue(e)
		}
		return strings.Join(parts, sep)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			s := formatValue(v[k])
			if _, isStr := v[k].(string); isStr {
				s = "'" + s + "'"
			}
			parts[i] = k + "=" + s
		}
		return strings.Join(parts, ", ")
	default:
		return fmt.Sprint(v)
	}
}

// formatUpDown renders admin_state_up as the OpenStack client does.
func formatUpDown(v any, present bool) string {
	if b, ok := v.(bool); ok {
		if b {
			return "UP"
		}
		return "DOWN"
	}
	if !present {
		return ""
	}
	return formatValue(v)
}

// formatAlive renders an agent's alive flag as the OpenStack client does.
func formatAlive(v any, present bool) string {
	if b, ok := v.(bool); ok {
		if b {
			return ":-)"
		}
		return "XXX"
	}
	if !present {
		return ""
	}
	return formatValue(v)
}

// writeTable draws an OpenStack-client style table:
//
//	+----+------+
//	| ID | Name |
//	+----+------+
//	| n1 | blue |
//	+----+------+
//
// A cell holding line breaks spans several lines of its row.
func writeTable(w io.Writer, headers []string, rows [][]string) error {
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	split := make([][][]string, len(rows))
	for r, row := range rows {
		split[r] = make([][]string, len(row))
		for i, cell := range row {
			lines := strings.Split(cell, "\n")
			for _, l := range lines {
				widths[i] = max(widths[i], utf8.RuneCountInString(l))
			}
			split[r][i] = lines
		}
	}
	var b strings.Builder
	rule := func() {
		b.WriteByte('+')
		for _, wd := range widths {
			b.WriteString(strings.Repeat("-", wd+2))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	line := func(cells []string) {
		b.WriteByte('|')
		for i, c := range cells {
			b.WriteByte(' ')
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+1))
			b.WriteByte('|')
		}
		b.WriteByte('\n')
	}
	rule()
	line(headers)
	rule()
	for _, row := range split {
		height := 1
		for _, lines := range row {
			height = max(height, len(lines))
		}
		for l := range height {
			cells := make([]string, len(row))
			for i, lines := range row {
				if l < len(lines) {
					cells[i] = lines[l]
				}
			}
			line(cells)
		}
	}
	if len(rows) > 0 {
		rule()
	}
	_, err := io.WriteString(w, b.String())
	return err
}
