# Times what the OOD dashboard does with an app's files at each Launch click, in one Ruby process:
# form.yml read and parsed (BatchConnect::App#form_config: YAML.safe_load of the file), and
# submit.yml.erb rendered with ERB (trim_mode "-", as the dashboard renders it) with every form field
# a bare method returning a String, then parsed as YAML. Usage:
#   ruby bench/render-time.rb APP_DIR RUNS FIELDS_JSON
# Prints JSON: {"formYmlMs": [...], "submitMs": [...], "script": {...}} (one figure per run, after
# one warm-up run that is not counted). A render that raises is an error: the values must be valid.
require "erb"
require "json"
require "yaml"

app_dir, runs, fields_json = ARGV
runs = Integer(runs)
fields = JSON.parse(fields_json)

# The binding OOD renders submit.yml.erb in: every attribute a method returning its String value.
class LaunchContext
  def initialize(fields)
    fields.each { |id, value| define_singleton_method(id) { value.to_s } }
  end

  def render(erb)
    erb.result(binding)
  end
end

clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC, :float_millisecond) }
form_path = File.join(app_dir, "form.yml")
submit_path = File.join(app_dir, "submit.yml.erb")
context = LaunchContext.new(fields)

form_ms = []
submit_ms = []
script = nil
(runs + 1).times do |i|
  started = clock.()
  form = YAML.safe_load(File.read(form_path), aliases: true)
  form_done = clock.()
  rendered = context.render(ERB.new(File.read(submit_path), trim_mode: "-"))
  script = YAML.safe_load(rendered)["script"]
  submit_done = clock.()
  raise "form.yml has no attributes" unless form.is_a?(Hash) && form["attributes"]
  next if i.zero?

  form_ms << (form_done - started)
  submit_ms << (submit_done - form_done)
end
puts JSON.generate({ formYmlMs: form_ms, submitMs: submit_ms, script: script })
