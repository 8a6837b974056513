package client_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/glimpse-vlm/glimpse/client"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
	"github.com/glimpse-vlm/glimpse/server"
	"github.com/glimpse-vlm/glimpse/server/servertest"
)

// startReal serves blip-caption from the test checkpoints with the given
// image-cache budget and returns its address.
func startReal(t *testing.T, cacheBytes int64) string {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.ImageCacheBytes = cacheBytes
	cfg.Models = []server.ModelSpec{{Name: "blip-caption", Dir: e2e + "blip-caption"}}
	_, addr := servertest.Start(t, cfg)
	return addr
}

// TestResendAgainstServer: with a server that keeps no images (cache off)
// every hash reference is NOT_FOUND; the SDK resends the bytes and the
// answers stay identical. Two servers round-robin give identical answers.
func TestResendAgainstServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	img := client.ImageFile(e2e + "blip-caption/cat_chelsea.jpg")
	opts := &pb.GenerationOptions{MaxNewTokens: 6}

	noCache := startReal(t, 0)
	// The raw API refuses an unknown hash.
	raw, err := client.New(noCache, client.WithImageCache(false))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	want, err := raw.Caption(ctx, img, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	conn := pb.NewGlimpseServiceClient(raw.Conn())
	_, err = conn.Caption(ctx, &pb.CaptionRequest{Image: &pb.Image{Source: &pb.Image_Sha256{Sha256: img.SHA256()}}})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("hash on a cache-less server: %v, want NotFound", err)
	}

	both := startReal(t, 64<<20)
	c, err := client.New(noCache + "," + both)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 6; i++ {
		got, err := c.Caption(ctx, img, "", opts)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got.GetText() != want.GetText() || got.GetImageSha256() != img.SHA256() {
			t.Fatalf("call %d: %q (%s), want %q", i, got.GetText(), got.GetImageSha256(), want.GetText())
		}
	}
}
