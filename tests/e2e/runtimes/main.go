// A provided.al2023 bootstrap in Go, standard library only: it speaks the Lambda Runtime API
// itself (GET next, POST response/error) and acts on the event's "action" (see test_runtimes.py).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"
)

var base = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"
var count = 0
var seen = map[string]int{}

func post(path string, body []byte, errorType string) {
	req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if errorType != "" {
		req.Header.Set("Lambda-Runtime-Function-Error-Type", errorType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func fail(path, errorType, message string) {
	doc, _ := json.Marshal(map[string]interface{}{"errorType": errorType, "errorMessage": message, "stackTrace": []string{}})
	fmt.Printf("ERROR %s: %s\n", errorType, message)
	post(path, doc, errorType)
}

func main() {
	if os.Getenv("FAIL_AT_LOAD") != "" {
		fail("/init/error", "InitError", "boom at load")
		os.Exit(1)
	}
	if os.Getenv("_HANDLER") == "missing.handler" {
		fail("/init/error", "Runtime.HandlerNotFound", "missing.handler is not a handler of this program")
		os.Exit(1)
	}
	for {
		resp, err := http.Get(base + "/invocation/next")
		if err != nil {
			os.Exit(2)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		deadline, _ := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
		os.Setenv("_X_AMZN_TRACE_ID", resp.Header.Get("Lambda-Runtime-Trace-Id"))
		count++
		var event map[string]interface{}
		json.Unmarshal(body, &event)
		action, _ := event["action"].(string)
		switch action {
		case "error":
			fail("/invocation/"+id+"/error", "ValueError", "boom")
			continue
		case "crash":
			os.Exit(3)
		case "sleep":
			child := exec.Command("sleep", "60")
			child.Start()
			fmt.Printf("CHILD %d\n", child.Process.Pid)
			time.Sleep(60 * time.Second)
		case "wait":
			time.Sleep(time.Duration(event["seconds"].(float64)*1000) * time.Millisecond)
		case "flaky":
			seen[id]++
			if seen[id] < 2 {
				fail("/invocation/"+id+"/error", "RuntimeError", fmt.Sprintf("attempt %d fails", seen[id]))
				continue
			}
		}
		env := map[string]interface{}{}
		for _, k := range []string{"_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_EXECUTION_ENV",
			"AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION",
			"_X_AMZN_TRACE_ID", "AWS_LAMBDA_LOG_STREAM_NAME"} {
			if v, ok := os.LookupEnv(k); ok {
				env[k] = v
			} else {
				env[k] = nil
			}
		}
		fmt.Println("handling", id)
		out, _ := json.Marshal(map[string]interface{}{
			"event": event, "requestId": id, "count": count,
			"remaining": deadline - time.Now().UnixMilli(),
			"functionName": os.Getenv("AWS_LAMBDA_FUNCTION_NAME"), "arn": resp.Header.Get("Lambda-Runtime-Invoked-Function-Arn"),
			"env": env, "pid": os.Getpid(),
		})
		post("/invocation/"+id+"/response", out, "")
	}
}
