package processor

import (
	"context"
	"testing"
	"time"
)

func TestDrainContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	d, stop := drainContext(ctx, 100*time.Millisecond)
	defer stop()
	cancel()
	select {
	case <-d.Done():
		t.Fatal("the drain context ended with its parent: the batch in progress would be abandoned")
	case <-time.After(50 * time.Millisecond):
	}
	select {
	case <-d.Done():
	case <-time.After(time.Second):
		t.Fatal("the drain context outlived its grace")
	}
	d2, stop2 := drainContext(context.Background(), time.Hour)
	stop2()
	if d2.Err() == nil {
		t.Error("stop does not end the drain context")
	}
}
