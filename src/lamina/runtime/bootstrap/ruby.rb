# frozen_string_literal: true

# Lamina's Ruby bootstrap: loads the handler named by _HANDLER ("file.method" or
# "file.Module::Class.method") from LAMBDA_TASK_ROOT and serves invocations over the Lambda
# Runtime API with net/http and json from the standard library. Error documents follow AWS's
# Ruby runtime (aws_lambda_ric): {"errorMessage", "errorType": "Function<Class>" or
# "Init<Class>", "stackTrace"}.

require 'json'
require 'net/http'

$stdout.sync = true
$stderr.sync = true

module LaminaRuntime
  BASE = '/2018-06-01/runtime'

  # The context object handlers receive (aws_lambda_ric lambda_context.rb).
  class LambdaContext
    attr_reader :aws_request_id, :invoked_function_arn, :log_group_name, :log_stream_name,
                :function_name, :memory_limit_in_mb, :function_version, :identity,
                :client_context, :deadline_ms

    def initialize(headers)
      @clock_diff = Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond) -
                    Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond)
      @deadline_ms = headers['lambda-runtime-deadline-ms'].to_i
      @aws_request_id = headers['lambda-runtime-aws-request-id']
      @invoked_function_arn = headers['lambda-runtime-invoked-function-arn']
      @log_group_name = ENV['AWS_LAMBDA_LOG_GROUP_NAME']
      @log_stream_name = ENV['AWS_LAMBDA_LOG_STREAM_NAME']
      @function_name = ENV['AWS_LAMBDA_FUNCTION_NAME']
      @memory_limit_in_mb = ENV['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']
      @function_version = ENV['AWS_LAMBDA_FUNCTION_VERSION']
      @identity = JSON.parse(headers['lambda-runtime-cognito-identity']) if headers['lambda-runtime-cognito-identity']
      @client_context = JSON.parse(headers['lambda-runtime-client-context']) if headers['lambda-runtime-client-context']
    end

    def get_remaining_time_in_millis
      now = Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond) + @clock_diff
      remaining = @deadline_ms - now
      remaining.positive? ? remaining : 0
    end
  end

  def self.error_document(error, classification)
    {
      'errorMessage' => error.message,
      'errorType' => "#{classification}<#{error.class}>",
      'stackTrace' => (error.backtrace || []).map { |line| line.sub("#{ENV['LAMBDA_TASK_ROOT']}/", '') }
    }
  end

  # The Runtime API client: one keep-alive connection, no read timeout on the long poll.
  class Client
    def initialize(address)
      host, port = address.split(':')
      @http = Net::HTTP.new(host, port.to_i)
      @http.read_timeout = nil
      @http.keep_alive_timeout = 3600
      @http.start
    end

    def next_invocation
      response = @http.request(Net::HTTP::Get.new("#{BASE}/invocation/next"))
      headers = {}
      response.each_header { |name, value| headers[name.downcase] = value }
      [headers, response.body || '']
    end

    def post(path, body, headers = {})
      request = Net::HTTP::Post.new("#{BASE}#{path}", { 'Content-Type' => 'application/json' }.merge(headers))
      request.body = body
      @http.request(request)
    end

    def post_error(path, document)
      post(path, JSON.generate(document), 'Lambda-Runtime-Function-Error-Type' => document['errorType'])
    end
  end

  def self.load_handler(handler)
    file, method_path = handler.split('.', 2)
    raise ArgumentError, "Bad handler '#{handler}'" if file.nil? || file.empty? || method_path.nil? || method_path.empty?

    require File.join(ENV['LAMBDA_TASK_ROOT'] || Dir.pwd, file)
    if method_path.include?('.')
      owner_name, method_name = method_path.split(/\.(?=[^.]*\z)/)
      owner = Object.const_get(owner_name)
      owner.method(method_name)
    else
      Object.new.method(method_path) # a top-level def is a private method of Object
    end
  end

  def self.main
    client = Client.new(ENV.fetch('AWS_LAMBDA_RUNTIME_API'))
    begin
      handler = load_handler(ENV.fetch('_HANDLER', ''))
    rescue Exception => e # rubocop:disable Lint/RescueException (a LoadError or SyntaxError too)
      document = error_document(e, 'Init')
      puts "Init error when loading handler #{ENV['_HANDLER']}"
      puts JSON.generate(document)
      client.post_error('/init/error', document)
      exit!(1)
    end
    loop do
      headers, body = client.next_invocation
      request_id = headers['lambda-runtime-aws-request-id']
      if headers['lambda-runtime-trace-id']
        ENV['_X_AMZN_TRACE_ID'] = headers['lambda-runtime-trace-id']
      else
        ENV.delete('_X_AMZN_TRACE_ID')
      end
      begin
        event = body.empty? ? {} : JSON.parse(body)
        context = LambdaContext.new(headers)
        result = handler.call(event: event, context: context)
        payload = JSON.generate(result, quirks_mode: true)
      rescue Exception => e # rubocop:disable Lint/RescueException
        raise if e.is_a?(SystemExit)

        document = error_document(e, 'Function')
        puts 'Error raised from handler method'
        puts JSON.generate(document)
        client.post_error("/invocation/#{request_id}/error", document)
        next
      end
      client.post("/invocation/#{request_id}/response", payload)
    end
  end
end

LaminaRuntime.main
