package store

// Records of broker.RecordNamespaces (kind 'x') are the caller's opaque
// bytes; the store only marks their version. A version-0 record is the
// bytes alone, which writ only ever wrote as JSON or decimal text.

// encodeRecord returns value as stored: storedMarker ‖ 1 ‖ 'x' ‖ value.
func encodeRecord(value []byte) []byte {
	out := make([]byte, 0, 3+len(value))
	out = append(out, storedMarker, storedV1, kindRecord.tag)
	return append(out, value...)
}

// decodeRecord returns a copy of the caller's bytes of record id of
// namespace ns.
func decodeRecord(ns, id string, data []byte) ([]byte, error) {
	if len(data) == 0 || data[0] != storedMarker {
		return append([]byte{}, data...), nil
	}
	if len(data) < 3 || data[1] != storedV1 || data[2] != kindRecord.tag {
		if _, _, err := openStored(kindRecord, ns+"/"+id, data); err != nil {
			return nil, err
		}
		return nil, &storedError{kind: kindRecord.name, id: ns + "/" + id, reason: "has a malformed header (corrupt)"}
	}
	return append([]byte{}, data[3:]...), nil
}
