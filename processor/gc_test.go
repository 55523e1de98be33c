package processor

import (
	"errors"
	"io/fs"
	"testing"
)

func TestContainerMemoryLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if v, ok := m[p]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"cgroup v2 limit", map[string]string{"/sys/fs/cgroup/memory.max": "1073741824\n"}, 1 << 30},
		{"cgroup v2 unlimited", map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, 0},
		{"cgroup v1 limit", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "2147483648\n"}, 2 << 30},
		{"cgroup v1 unlimited", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0},
		{"no cgroup files", nil, 0},
		{"garbage", map[string]string{"/sys/fs/cgroup/memory.max": "lots"}, 0},
	} {
		if got := containerMemoryLimit(files(tt.files)); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
	if containerMemoryLimit(func(string) ([]byte, error) { return nil, errors.New("denied") }) != 0 {
		t.Error("unreadable files give a limit")
	}
}
