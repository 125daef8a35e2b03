package gdpr

import (
	"bytes"
	"encoding/json"
	"errors"
)

// field is one member of a JSON object. Objects are kept as ordered
// members so that requests and contacts are echoed as received (order and
// unknown fields included), which maps would not do.
type field struct {
	key string
	val json.RawMessage
}

// parseObject splits a JSON object into its members, in order.
func parseObject(b []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := t.(string)
		if !ok {
			return nil, errors.New("not a JSON object")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, field{k, v})
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errors.New("not a JSON object")
	}
	if out == nil {
		out = []field{}
	}
	return out, nil
}

// writeObject writes the members as one compact JSON object.
func writeObject(fs []field) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(mustMarshal(f.key))
		b.WriteByte(':')
		if err := json.Compact(&b, f.val); err != nil {
			b.WriteString("null")
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// mustMarshal marshals values that cannot fail (strings, ints, string slices).
func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
