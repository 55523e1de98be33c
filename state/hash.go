package state

// HashID is the 64-bit FNV-1a hash of an id, used where the state keeps ids
// only to recognise them again (event ids, ticket ids).
func HashID(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
