package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/glimpse-vlm/glimpse/client"
	_ "github.com/glimpse-vlm/glimpse/fusion/families"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
	"github.com/glimpse-vlm/glimpse/server"
	"github.com/glimpse-vlm/glimpse/server/servertest"
)

// addr is the loopback address of the in-process server the examples
// talk to; it serves the tiny test checkpoints (seeded random weights, so
// the captions are word salad) as blip-caption (default), blip-vqa,
// blip-itm and clip.
var addr string

const e2e = "../testdata/golden/e2e/"

func TestMain(m *testing.M) {
	cfg := server.DefaultConfig()
	for _, n := range []string{"blip-caption", "blip-vqa", "blip-itm", "clip"} {
		cfg.Models = append(cfg.Models, server.ModelSpec{Name: n, Dir: e2e + n})
	}
	srv, a, err := servertest.Listen(cfg)
	if err != nil {
		log.Fatal(err)
	}
	addr = a
	code := m.Run()
	srv.Stop()
	// No test may leave goroutines behind (an unclosed stream or connection).
	// The kernels worker pool lives for the whole process by design.
	if err := goleak.Find(goleak.IgnoreTopFunction("github.com/glimpse-vlm/glimpse/kernels.worker")); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func ExampleClient_Caption() {
	c, err := client.New(addr) // e.g. "127.0.0.1:50051"
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, err := c.Caption(ctx, client.ImageFile(e2e+"blip-caption/cat_chelsea.jpg"), "",
		&pb.GenerationOptions{MaxNewTokens: 12})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.GetText())
	fmt.Println(res.GetTokenIds(), res.GetFinishReason())
	// Output:
	// space space space space what space color film what space she what
	// [281 281 281 281 126 281 354 186 126 281 339 126] FINISH_REASON_LENGTH
}

func ExampleClient_Answer() {
	c, err := client.New(addr, client.WithModel("blip-vqa"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, err := c.Answer(ctx, client.ImageFile(e2e+"blip-vqa/cat_chelsea.jpg"), "what color is the cat?",
		&pb.GenerationOptions{MaxNewTokens: 8})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", res.GetText())
	// Output:
	// "##oo thoseooooo"
}

func ExampleClient_Match() {
	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, err := c.Model("clip").Match(ctx, client.ImageFile(e2e+"clip/cat_chelsea.jpg"),
		"a photo of a cat", "a photo of a dog")
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range res.GetScores() {
		fmt.Printf("%-18s cosine %.4f logit %.3f\n", s.GetText(), s.GetCosine(), s.GetLogit())
	}
	// Output:
	// a photo of a cat   cosine 0.4463 logit 5.451
	// a photo of a dog   cosine 0.4948 logit 6.043
}

func ExampleClient_Embed() {
	c, err := client.New(addr, client.WithModel("blip-itm"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, err := c.Embed(ctx, []client.Image{client.ImageFile(e2e + "blip-itm/camera_gray.jpg")},
		[]string{"a black and white photo"})
	if err != nil {
		log.Fatal(err)
	}
	img, txt := res.GetImages()[0].GetValues(), res.GetTexts()[0].GetValues()
	var dot float32
	for i := range img {
		dot += img[i] * txt[i]
	}
	fmt.Printf("%d dimensions, cosine %.4f\n", len(img), dot)
	// Output:
	// 20 dimensions, cosine 0.0227
}

func ExampleClient_Generate() {
	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	stream, err := c.Generate(ctx, []client.Part{
		client.ImagePart(client.ImageFile(e2e + "blip-caption/camera_gray.jpg")),
		client.Text("a photograph of"),
	}, &pb.GenerationOptions{MaxNewTokens: 12}, pb.Task_TASK_UNSPECIFIED)
	if err != nil {
		log.Fatal(err)
	}
	var pieces []string
	for piece, err := range stream.All() {
		if err != nil {
			log.Fatal(err)
		}
		pieces = append(pieces, piece.GetText()) // print as they arrive in real use
	}
	fmt.Printf("%q\n", strings.Join(pieces, ""))
	fmt.Println(stream.Final().GetText())
	fmt.Println(stream.Final().GetFinishReason(), stream.Final().GetUsage().GetGeneratedTokens(), "tokens")
	// Output:
	// "a photograph of petal petal petal petal"
	// a photograph of petal petal petal petal
	// FINISH_REASON_EOS 4 tokens
}

func ExampleClient_ListModels() {
	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, err := c.ListModels(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range res.GetModels() {
		fmt.Println(m.GetName(), m.GetFamily(), m.GetTasks(), m.GetState())
	}
	// Output:
	// blip-caption blip [TASK_CAPTION] MODEL_STATE_SERVING
	// blip-vqa blip [TASK_ANSWER] MODEL_STATE_SERVING
	// blip-itm blip [TASK_MATCH TASK_EMBED] MODEL_STATE_SERVING
	// clip clip [TASK_MATCH TASK_EMBED] MODEL_STATE_SERVING
}
