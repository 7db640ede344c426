# Ruby: def handler(event:, context:)
$count = 0
$seen = Hash.new(0)
ENV_KEYS = %w[_HANDLER LAMBDA_TASK_ROOT LAMBDA_RUNTIME_DIR AWS_EXECUTION_ENV AWS_LAMBDA_RUNTIME_API
              AWS_LAMBDA_FUNCTION_NAME AWS_LAMBDA_FUNCTION_MEMORY_SIZE AWS_REGION _X_AMZN_TRACE_ID
              AWS_LAMBDA_LOG_STREAM_NAME].freeze
raise 'boom at load' if ENV['FAIL_AT_LOAD']

def handler(event:, context:)
  $count += 1
  action = event['action'] || 'echo'
  raise ArgumentError, 'boom' if action == 'error'
  exit!(3) if action == 'crash'
  if action == 'sleep'
    pid = Process.spawn('sleep', '60')
    puts "CHILD #{pid}"
    sleep 60
  end
  sleep event['seconds'] if action == 'wait'
  if action == 'flaky'
    $seen[context.aws_request_id] += 1
    raise "attempt #{$seen[context.aws_request_id]} fails" if $seen[context.aws_request_id] < 2
  end
  puts "handling #{context.aws_request_id}"
  {
    'event' => event, 'requestId' => context.aws_request_id, 'count' => $count,
    'remaining' => context.get_remaining_time_in_millis, 'functionName' => context.function_name,
    'arn' => context.invoked_function_arn, 'env' => ENV_KEYS.to_h { |k| [k, ENV[k]] }, 'pid' => Process.pid
  }
end

# The other handler form: file.Module::Class.method
module Lamina
  class Greeter
    def self.greet(event:, context:)
      { 'greeting' => "hello #{event['name']}", 'function' => context.function_name }
    end
  end
end
