package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

var yamlNodeType = reflect.TypeOf(yaml.Node{})

// checkFields refuses keys of a mapping node that the target struct does
// not declare, naming the line, so a typo never silently drops a setting.
func checkFields(n *yaml.Node, v any) error {
	return checkTree(n, reflect.TypeOf(v), "", 0)
}

// checkTree walks node n against the Go type t it will be decoded into and
// refuses the first key t does not declare, naming its path in the file
// (agents[1].ceilling) and the nearest declared key: the message speaks of
// the file, never of Go types.
func checkTree(n *yaml.Node, t reflect.Type, path string, depth int) error {
	if n == nil || depth > 64 {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return checkTree(n.Content[0], t, path, depth+1)
	case yaml.AliasNode:
		return checkTree(n.Alias, t, path, depth+1)
	}
	switch {
	case t == yamlNodeType:
		return nil // read later, by its own reader
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			if err := checkTree(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() != reflect.Struct || n.Kind != yaml.MappingNode:
		return nil // scalars and type mismatches are the decoder's to judge
	}
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			fields[tag] = t.Field(i).Type
			names = append(names, tag)
		}
	}
	if len(fields) == 0 {
		return nil // a type with its own YAML form (a duration)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		at := k.Value
		if path != "" {
			at = path + "." + k.Value
		}
		ft, ok := fields[k.Value]
		if !ok {
			return &fieldAt{line: k.Line, field: at, msg: "unknown field; " + suggest(k.Value, names)}
		}
		if err := checkTree(v, ft, at, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// fieldAt is an unknown field, with where it is.
type fieldAt struct {
	line       int
	field, msg string
}

func (e *fieldAt) Error() string { return fmt.Sprintf("line %d: %s: %s", e.line, e.field, e.msg) }

// suggest names the declared field nearest to name, or lists them all.
func suggest(name string, names []string) string {
	best, bestD := "", len(name)
	for _, n := range names {
		if d := editDistance(strings.ToLower(name), n); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" && bestD <= max(2, len(name)/3) {
		return "did you mean " + best + "?"
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	return "the fields here are " + strings.Join(sorted, ", ")
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var unmarshalInto = regexp.MustCompile("cannot unmarshal !!(\\w+)(?: `([^`]*)`)? into (\\S+)")

// plainTypeError rewrites yaml.v3's "cannot unmarshal !!str `x` into
// float64" in the file's words: what the field expects, and what it got.
func plainTypeError(msg string) string {
	return unmarshalInto.ReplaceAllStringFunc(msg, func(m string) string {
		p := unmarshalInto.FindStringSubmatch(m)
		if p[2] == "" {
			return fmt.Sprintf("expects %s, got %s", yamlKind(p[3]), yamlTag(p[1]))
		}
		return fmt.Sprintf("expects %s, got %s %q", yamlKind(p[3]), yamlTag(p[1]), p[2])
	})
}

func yamlKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.Contains(goType, "."):
		return "a mapping"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	}
	return "another kind of value"
}

func yamlTag(tag string) string {
	switch tag {
	case "str":
		return "the string"
	case "int", "float":
		return "the number"
	case "bool":
		return "the boolean"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	}
	return "the value"
}
