# frozen_string_literal: true

# ood-dashboard.rb — does with a batch-connect app what the Open OnDemand
# dashboard does when a researcher opens the form, clicks Launch, and looks at
# the session card. Test harness only: it renders the app's ERB with real Ruby
# exactly the way the dashboard would, so tests see what OOD users would see.
#
# Written from reading (not copying) OSC/ondemand v3.1.16 (cross-checked with
# v4.2.3 and main): apps/dashboard/app/models/batch_connect/{app,session,
# session_context}.rb, app/lib/smart_attributes/**, the session-contexts
# controller and the session card views; and OSC/ood_core v0.29.0 (the version
# OOD 3.1.16 ships) lib/ood_core/job/script.rb.
#
# Input (stdin): JSON
#   { "settings": {...}, "requests": [ {"kind": "launch", ...} | {"kind": "views", ...} ] }
# Output (stdout): a JSON array, one result per request, in request order.
# See test/support/ood.ts for the fields; it is the only intended caller.

require 'erb'
require 'json'
require 'yaml'
require 'pathname'
require 'fileutils'
require 'securerandom'
require 'stringio'
require 'set'
require 'date'
# OOD's dashboard process has Shellwords loaded (Bundler/RubyGems and ood_core
# use it), so app ERB may call Shellwords.escape without requiring it.
require 'shellwords'
# Rails loads CGI too: CGI.escapeHTML works in an app's ERB on OOD.
begin
  require 'cgi'
rescue LoadError
  require 'cgi/escape'
end

# OpenStruct is what the dashboard binds submit.yml.erb and view.html.erb to.
# Ruby 3.4 prints a "will be removed from default gems" note when it loads.
begin
  verbose = $VERBOSE
  $VERBOSE = nil
  require 'ostruct'
ensure
  $VERBOSE = verbose
end

# ---------------------------------------------------------------------------
# The slice of ActiveSupport that OOD's ERB code can count on. The dashboard is
# a Rails app, so `value.blank?` works in a submit.yml.erb there; without these
# an app that works under OOD would fail here. Only methods the emulation
# itself needs or that app ERB commonly uses.
# ---------------------------------------------------------------------------
class Object
  def blank?
    respond_to?(:empty?) ? !!empty? : !self
  end

  def present?
    !blank?
  end

  def presence
    self if present?
  end
end

class String
  def blank?
    strip.empty?
  end
end

class Array
  def self.wrap(object)
    if object.nil? then []
    elsif object.respond_to?(:to_ary) then object.to_ary || [object]
    else [object]
    end
  end
end

class Hash
  # ActiveSupport's deep_merge: nested Hashes merge, anything else (Arrays
  # included) is replaced by the right-hand side.
  def deep_merge(other)
    merge(other) do |_key, mine, theirs|
      mine.is_a?(Hash) && theirs.is_a?(Hash) ? mine.deep_merge(theirs) : theirs
    end
  end

  def symbolize_keys
    transform_keys { |key| key.respond_to?(:to_sym) ? key.to_sym : key }
  end

  def deep_symbolize_keys
    each_with_object({}) do |(key, value), out|
      out[key.respond_to?(:to_sym) ? key.to_sym : key] = OodHarness.deep_symbolize(value)
    end
  end
end

module OodHarness
  def self.deep_symbolize(value)
    case value
    when Hash then value.deep_symbolize_keys
    when Array then value.map { |v| deep_symbolize(v) }
    else value
    end
  end

  # Rough ActiveSupport#as_json: what Rails' JSON serialisation turns an object
  # into. Used for user_defined_context.json and for our own JSON output.
  def self.as_json(value)
    case value
    when nil, true, false, Integer then value
    when Float then value.finite? ? value : value.to_s
    when String then value.valid_encoding? ? value : value.scrub
    when Symbol, Pathname then value.to_s
    when Hash then value.to_h { |k, v| [k.to_s, as_json(v)] }
    when Array then value.map { |v| as_json(v) }
    when Struct then as_json(value.to_h)
    when Enumerable then as_json(value.to_a)
    when Time then value.utc.strftime('%Y-%m-%dT%H:%M:%S.%LZ')
    else
      if value.respond_to?(:to_hash) then as_json(value.to_hash)
      elsif value.instance_variables.any?
        value.instance_variables.to_h { |iv| [iv.to_s.delete_prefix('@'), as_json(value.instance_variable_get(iv))] }
      else value.to_s
      end
    end
  end

  # ---------------------------------------------------------------------------
  # File modes. Under WASI, Ruby can neither see nor set permission bits, so the
  # wasm runner (wasm-ruby.mjs) lends us node:fs through the js bridge.
  # ---------------------------------------------------------------------------
  module HostFS
    module_function

    def wasm?
      RUBY_PLATFORM.include?('wasm')
    end

    def host
      require 'js'
      JS.global[:oodHarnessHost]
    end

    # Permission bits (07777) of path itself (not following a symlink).
    def mode(path)
      wasm? ? host.call(:lstatMode, path.to_s).to_i : (File.lstat(path.to_s).mode & 0o7777)
    end

    def chmod(path, mode)
      wasm? ? host.call(:chmod, path.to_s, mode & 0o7777) : File.chmod(mode & 0o7777, path.to_s)
    end
  end

  # What OOD's I18n strings say (config/locales/en.yml, v3.1.16).
  MESSAGES = {
    form_invalid: 'The form.yml has missing options in the %<id>s form field.',
    invalid_form_array: "'form' element in form.yml is not an Array",
    invalid_form_attributes: "'attributes' element in form.yml is not a Map",
    missing_cluster: "The cluster was never set. Either set it in form.yml.erb with `cluster` or `form.cluster` or\n" \
                     "set `cluster` in submit.yml.erb.\n"
  }.freeze

  # ERB exactly as the dashboard builds it: trim_mode '-' everywhere.
  def self.render_erb(text, binding, filename: nil)
    erb = ERB.new(text, trim_mode: '-')
    erb.filename = filename if filename
    erb.result(binding)
  end
end

# Named like the dashboard's classes so that error messages and inspect
# output ("comparison of SmartAttributes::Attribute with ... failed",
# "#<Enumerator: #<BatchConnect::SessionContext ...>:partition>") read as on OOD.
module SmartAttributes
  # ===========================================================================
  # Smart attributes (dashboard app/lib/smart_attributes). An Attribute holds
  # its form.yml options; `value` is what ERB sees — always a String.
  # ===========================================================================
  class Attribute
    attr_reader :id, :opts

    def initialize(id, opts = {})
      @id = id.to_s
      @opts = opts.to_h.symbolize_keys
    end

    def fixed?
      !!opts[:fixed]
    end

    # attribute.rb#value: `opts[:value].to_s` — nil becomes "" (file inputs aside).
    def value
      %w[file_field file_attachments].include?(widget) ? opts[:value] : opts[:value].to_s
    end

    def value=(other)
      @opts[:value] = other
    end

    def widget
      (opts[:widget] || 'text_field').to_s
    end

    def submit(fmt: nil)
      {}
    end

    def ==(other)
      id == other.to_s
    end

    def to_s
      value.to_s
    end

    # [label, value] pairs, as attribute.rb#select_choices gives them.
    def select_choices
      excluded = opts.fetch(:exclude_options, []).to_a
      opts.fetch(:options, []).to_a.reject do |entry|
        excluded.include?(entry.is_a?(Array) ? entry.first : entry)
      end.map do |entry|
        case entry
        when Array then entry
        when String, Symbol then [entry.to_s, entry.to_s]
        end
      end
    end

    # attribute.rb#validate!: the only check the dashboard makes on a form.
    def validate!
      if widget == 'select' && select_choices.size != select_choices.compact.size
        raise StandardError, format(OodHarness::MESSAGES[:form_invalid], id: id)
      end

      self
    end

    def checked_value
      opts.fetch(:checked_value, '1')
    end

    def unchecked_value
      opts.fetch(:unchecked_value, '0')
    end

    # What the browser posts for this field when the researcher changes
    # nothing (Rails form helpers + HTML): a select posts its selected option,
    # or the first one when the value matches none; a check box posts
    # checked_value when value == checked_value, else its hidden unchecked_value.
    def untouched_form_value
      case widget
      when 'select'
        values = select_choices.compact.map { |choice| choice_value(choice).to_s }
        values.include?(value.to_s) ? value.to_s : values.first.to_s
      when 'check_box'
        value.to_s == checked_value.to_s ? checked_value.to_s : unchecked_value.to_s
      else
        value.to_s
      end
    end

    private

    # [label, value] or [label, value, {data-...}]
    def choice_value(choice)
      choice.size > 1 ? choice[1] : choice[0]
    end
  end

  module Attributes
    # bc_num_hours.rb and bc_num_slots.rb share this: a number field, min 1, whose nil value reads "1".
    class CountAttribute < Attribute
      def initialize(id, opts)
        super
        @opts = { min: 1, step: 1 }.merge(@opts)
      end

      def value
        (opts[:value] || '1').to_s
      end

      def widget
        'number_field'
      end
    end

    # bc_num_hours.rb: wall_time in seconds.
    class BcNumHours < CountAttribute
      def submit(fmt: nil)
        { script: { wall_time: (value.blank? ? 1 : value.to_i) * 3600 } }
      end
    end

    # bc_num_slots.rb: native node count per scheduler.
    class BcNumSlots < CountAttribute
      def submit(fmt: nil)
        slots = value.blank? ? 1 : value.to_i
        native = case fmt
                 when 'torque' then { resources: { nodes: slots } }
                 when 'slurm' then ['-N', slots]
                 when 'pbspro' then ['-l', "select=1:ncpus=#{slots}"]
                 when 'lsf' then ['-n', slots]
                 when 'fujitsu_tcs' then ['-L', "node=#{slots}"]
                 end
        native ? { script: { native: native } } : {}
      end
    end

    # bc_account.rb: text field by default; blank means "no -A".
    class BcAccount < Attribute
      def submit(fmt: nil)
        { script: { accounting_id: value.blank? ? nil : value.strip } }
      end
    end

    # bc_queue.rb: always a text field, whatever form.yml says.
    class BcQueue < Attribute
      def widget
        'text_field'
      end

      def submit(fmt: nil)
        { script: { queue_name: value.blank? ? nil : value.strip } }
      end
    end

    # bc_email_on_started.rb: check box; "0"/"" → false.
    class BcEmailOnStarted < Attribute
      def widget
        'check_box'
      end

      def submit(fmt: nil)
        { script: { email_on_started: !value.to_i.zero? } }
      end
    end

    # bc_vnc_idle.rb
    class BcVncIdle < Attribute
      def value
        (opts[:value] || '0').to_s
      end

      def widget
        'number_field'
      end

      def submit(fmt: nil)
        { batch_connect: { idle: value.blank? ? 0 : value.to_i } }
      end
    end

    # bc_vnc_resolution.rb
    class BcVncResolution < Attribute
      def widget
        'resolution_field'
      end

      def submit(fmt: nil)
        { batch_connect: { geometry: value.blank? ? '800x600' : value.strip } }
      end
    end

    # auto_queues.rb / auto_accounts.rb / auto_qos.rb / auto_groups.rb: selects
    # whose options always come from the scheduler or the user's groups; any
    # options the app gives are dropped. The harness takes the scheduler's
    # answer from settings.scheduler.
    class SchedulerSelect < Attribute
      def initialize(id, opts, scheduler_options)
        super(id, opts.to_h.symbolize_keys.reject { |key, _| key == :options }.merge(options: scheduler_options))
      end

      def widget
        'select'
      end
    end

    class AutoQueues < SchedulerSelect
      def submit(fmt: nil)
        { script: { queue_name: value } }
      end
    end

    class AutoAccounts < SchedulerSelect
      def submit(fmt: nil)
        { script: { accounting_id: value } }
      end
    end

    class AutoGroups < SchedulerSelect
      def submit(fmt: nil)
        { script: { accounting_id: value } }
      end
    end

    class AutoQos < SchedulerSelect
      def submit(fmt: nil)
        { script: { qos: value } }
      end
    end
  end

  # attribute_factory.rb: pick the class by id; a date_field gets today.
  module AttributeFactory
    SIMPLE = {
      'bc_num_hours' => Attributes::BcNumHours, 'bc_num_slots' => Attributes::BcNumSlots,
      'bc_account' => Attributes::BcAccount, 'bc_queue' => Attributes::BcQueue,
      'bc_email_on_started' => Attributes::BcEmailOnStarted, 'bc_vnc_idle' => Attributes::BcVncIdle,
      'bc_vnc_resolution' => Attributes::BcVncResolution
    }.freeze

    FROM_SCHEDULER = {
      'auto_queues' => [Attributes::AutoQueues, 'queues'], 'auto_accounts' => [Attributes::AutoAccounts, 'accounts'],
      'auto_qos' => [Attributes::AutoQos, 'qos'], 'auto_groups' => [Attributes::AutoGroups, 'groups']
    }.freeze

    module_function

    def build(id, opts, settings)
      # OOD 4.0+ lower-cases every id (attribute.rb#initialize); 3.1 keeps it.
      id = settings.fetch('oodVersion', '3.1').to_s.start_with?('3') ? id.to_s : id.to_s.downcase
      if SIMPLE.key?(id)
        SIMPLE[id].new(id, opts)
      elsif FROM_SCHEDULER.key?(id)
        klass, source = FROM_SCHEDULER[id]
        klass.new(id, opts, settings.fetch('scheduler', {}).fetch(source, []))
      else
        opts = opts.merge(value: Date.today) if opts[:widget].to_s == 'date_field' && opts[:value].to_s.empty?
        Attribute.new(id, opts)
      end
    end
  end
end

module BatchConnect
  # ===========================================================================
  # SessionContext (session_context.rb, as released up to v4.2.3): Enumerable
  # over the attributes, values reachable through method_missing. So any id
  # that Enumerable, Object or the Rails mixins already define answers with
  # that method — `context.partition` is Enumerable#partition, not the form
  # value. (OOD's main branch redefines partition/filter after 4.2.3; no
  # release has that yet.)
  # ===========================================================================
  class SessionContext
    include Enumerable

    # Instance methods the real class gets from Rails (ActiveModel::Model,
    # ActiveModel::Serializers::JSON, ActiveSupport's Enumerable and Object
    # extensions) that plain Ruby lacks. On OOD these names shadow form ids the
    # same way Enumerable's do; here they answer with a marker object so a test
    # sees that the value is not the form value.
    RAILS_METHODS = %w[
      as_json serializable_hash from_json to_json include_root_in_json read_attribute_for_serialization
      valid? invalid? validate validate! errors validation_context validates_with read_attribute_for_validation
      assign_attributes to_model to_key to_param to_partial_path persisted? model_name
      index_by index_with many? exclude? excluding without including pluck pick compact_blank sole
      in_order_of maximum minimum
      instance_values instance_variable_names to_query try try! in? presence_in deep_dup duplicable?
      html_safe? acts_like? with_options
    ].freeze

    # The Rails answer to one of RAILS_METHODS: not a form value.
    class RailsMethodResult
      def initialize(name)
        @name = name
      end

      def to_s
        "#<OOD SessionContext##{@name}: a Rails method, not the form value>"
      end
      alias inspect to_s
    end

    RAILS_METHODS.each do |name|
      next if %w[to_json].include?(name)

      define_method(name) { |*_args, **_kw, &_block| RailsMethodResult.new(name) }
    end

    def initialize(attributes)
      @attributes = attributes
    end

    # session_context.rb#attributes: the ids a POST may set — non-fixed ones.
    def attributes
      @attributes.reject(&:fixed?).to_h { |a| [a.id.to_s, nil] }
    end

    def [](id)
      @attributes.detect { |attribute| attribute == id }
    end

    def each(&block)
      @attributes.each(&block)
    end

    def method_missing(method_name, *arguments, &block)
      if (match = /\A(?<id>[^=]+)(?<assign>=)?\z/.match(method_name.to_s)) && (attribute = self[match[:id]])
        match[:assign] ? attribute.send(:value=, *arguments) : attribute.value
      else
        super
      end
    end

    def respond_to_missing?(method_name, include_private = false)
      (match = /\A(?<id>[^=]+)=?\z/.match(method_name.to_s)) && self[match[:id]] || super
    end

    def to_h
      Hash[*map { |a| [a.id.to_sym, a.value] }.flatten]
    end

    # session_context.rb#to_openstruct: the binding of submit.yml.erb. Ids that
    # collide with OpenStruct's methods are refused outright.
    def to_openstruct(addons: {})
      context_attrs = to_h
      illegal_attrs = OpenStruct.new.methods & context_attrs.keys
      unless illegal_attrs.empty?
        raise ArgumentError, "#{illegal_attrs.inspect} are keywords that cannot be used as names for form items"
      end

      OpenStruct.new(context_attrs.merge(addons.symbolize_keys))
    end

    # ActiveModel::Serializers::JSON#as_json as released: every non-fixed id is
    # read with `send(id)` — so an Enumerable/Kernel name serialises whatever
    # that method returns (or raises), exactly like on OOD.
    def user_defined_context
      attributes.keys.to_h { |name| [name, OodHarness.as_json(send(name))] }
    end

    private

    # Private helpers of the released class; `send` in serialisation hits them.
    def to_bool(value)
      !['false', '', 0, '0', 'f', 'F', 'FALSE', 'off', 'OFF', 'no', 'NO', false].include?(value)
    end

    def app_specific_cache_enabled?
      false
    end

    def global_cache_enabled?
      false
    end
  end

  # ===========================================================================
  # The app (batch_connect/app.rb): reads form.yml(.erb), builds attributes,
  # renders submit.yml.erb, finds the session views.
  # ===========================================================================
  class App
    attr_reader :root, :settings, :validation_reason

    def initialize(root, settings)
      @root = Pathname.new(root).expand_path
      @settings = settings
    end

    def name
      root.basename.to_s
    end

    # sys_router.rb#token
    def token
      "#{settings.fetch('routerType', 'sys')}/#{name}"
    end

    # ood_app.rb#title: manifest name, else the directory name titleized; a
    # `title:` in form.yml wins (app.rb#title).
    def title
      manifest_name = begin
        YAML.safe_load(root.join('manifest.yml').read).to_h['name'].to_s
      rescue StandardError
        ''
      end
      default = manifest_name.empty? ? name.tr('_-', ' ').split.map(&:capitalize).join(' ') : manifest_name
      form_config.fetch(:title, default)
    end

    # app.rb#form_config: form.yml.erb wins over form.yml; rendered with no
    # binding (nothing of the form exists yet). Any exception makes the whole
    # app invalid, with "Class: message" as the reason.
    def form_config
      return @form_config if @form_config

      file = %w[form.yml.erb form.yml].map { |f| root.join(f) }.find(&:file?)
      unless file
        @validation_reason = "This app does not supply a form file under the directory '#{root}'"
        return @form_config = {}
      end
      @form_config = read_yaml_erb(file, nil)
    rescue StandardError, ScriptError => e
      @validation_reason = "#{e.class.name}: #{e.message}"
      @form_config = {}
    end

    def read_yaml_erb(path, binding)
      contents = path.read
      contents = OodHarness.render_erb(contents, binding, filename: path.to_s) if path.extname == '.erb'
      YAML.safe_load(contents).to_h.deep_symbolize_keys
    end

    def configured_clusters
      Array.wrap(form_config.fetch(:cluster, nil)).map { |c| c.to_s.strip }.reject(&:empty?)
    end

    # app.rb#clusters: configured ids (or globs) that exist on the portal.
    # settings.clusters lists the portal's clusters; by default every plainly
    # named configured cluster exists.
    def clusters
      portal = settings['clusters'] || configured_clusters.reject { |c| c.match?(/[*?\[{]/) }
      configured_clusters.flat_map do |config|
        portal.include?(config) ? [config] : portal.select { |c| File.fnmatch(config, c, File::FNM_EXTGLOB) }
      end.uniq
    end

    def valid?
      if form_config.empty?
        @validation_reason ||= 'form.yml is empty'
        false
      elsif !form_config.fetch(:form, []).is_a?(Array)
        @validation_reason = OodHarness::MESSAGES[:invalid_form_array]
        false
      elsif !form_config.fetch(:attributes, {}).is_a?(Hash)
        @validation_reason = OodHarness::MESSAGES[:invalid_form_attributes]
        false
      elsif configured_clusters.any? && clusters.empty?
        @validation_reason = 'This app requires clusters that do not exist or you do not have access to.'
        false
      else
        true
      end
    end

    # app.rb#attributes: only ids listed under `form:` exist; a non-Hash entry
    # under `attributes:` is a fixed value; `cluster` is added up front.
    def build_attributes
      local = form_config.fetch(:attributes, {}).dup
      ids = form_config.fetch(:form, []).flatten.map(&:to_s)
      if clusters.any?
        ids.unshift('cluster') unless ids.include?('cluster')
        local[:cluster] = cluster_attribute_opts.merge(local[:cluster].is_a?(Hash) ? local[:cluster] : {})
      end
      ids.map do |id|
        opts = local.fetch(id.to_sym, {})
        opts = { value: opts, fixed: true } unless opts.is_a?(Hash)
        opts = { value: nil, fixed: true } if id == 'bc_vnc_resolution' && !settings.dig('env', 'ENABLE_NATIVE_VNC')
        SmartAttributes::AttributeFactory.build(id, opts, settings)
      end
    end

    # app.rb#add_cluster_widget: one cluster → hidden field, several → select.
    def cluster_attribute_opts
      if clusters.size > 1
        { widget: 'select', label: 'Cluster', options: clusters.map { |c| [c, c] } }
      else
        { value: clusters.first.to_s, widget: 'hidden_field' }
      end
    end

    # app.rb#build_session_context
    def build_session_context
      attributes = build_attributes
      attributes.each(&:validate!)
      SessionContext.new(attributes)
    end

    # app.rb#submit_opts: smart attributes first, then submit.yml.erb (rendered
    # with every form id as a bare method + staged_root) deep-merged on top.
    def submit_opts(context, fmt:, staged_root:, debug_root: nil)
      hsh = {}
      context.each { |attribute| hsh = hsh.deep_merge(attribute.submit(fmt: fmt)) }
      struct = context.to_openstruct(addons: { staged_root: staged_root })
      ctx_binding = struct.instance_eval { binding }
      begin
        hsh.deep_merge(submit_config(ctx_binding))
      rescue Psych::SyntaxError => e
        # app.rb writes the broken YAML next to the session for debugging.
        write_bad_submit_yml(debug_root, ctx_binding)
        raise e
      end
    end

    def submit_file
      %w[submit.yml.erb submit.yml].map { |f| root.join(f) }.find(&:file?)
    end

    def submit_config(binding)
      file = submit_file
      file ? read_yaml_erb(file, binding) : {}
    end

    def write_bad_submit_yml(staged_root, binding)
      return if staged_root.nil? || submit_file.nil?

      FileUtils.mkdir_p(staged_root.to_s)
      rendered = OodHarness.render_erb(submit_file.read, binding, filename: submit_file.to_s)
      File.write(File.join(staged_root.to_s, 'submit.yml'), rendered)
    end

    # app.rb#session_view / #session_info_view / #session_completed_view
    def session_view
      file = root.join('view.html.erb')
      file.file? ? file.read : nil
    end

    def session_info_view
      first_file('info.{md,html}.erb')
    end

    def session_completed_view
      first_file('completed.{md,html}.erb')
    end

    private

    def first_file(pattern)
      Pathname.glob(root.join(pattern).to_s).find(&:file?)&.read
    end
  end

  # ===========================================================================
  # The session (batch_connect/session.rb): staging, the template binding, and
  # the binding of info.md.erb / completed.md.erb (the Session itself).
  # ===========================================================================
  class Session
    # session.rb#TemplateBinding: the only two names template/*.erb sees.
    TemplateBinding = Struct.new(:session, :context) do
      def get_binding # rubocop:disable Naming/AccessorMethodName
        binding
      end
    end

    attr_accessor :id, :cluster_id, :job_id, :created_at, :token, :title, :script_type
    attr_writer :staged_root, :user_context, :connection, :info

    def initialize(app)
      @app = app
      @token = app.token
      @title = app.title
    end

    def app
      @app
    end

    # session.rb#staged_root: <dataroot>/batch_connect/<token>/output/<id>
    def staged_root
      Pathname.new(@staged_root.to_s)
    end

    def before_file = staged_root.join('before.sh')
    def script_file = staged_root.join('script.sh')
    def after_file = staged_root.join('after.sh')
    def clean_file = staged_root.join('clean.sh')
    def connect_file = staged_root.join('connection.yml')
    def output_file = staged_root.join('output.log')
    def user_defined_context_file = staged_root.join('user_defined_context.json')
    def job_script_content_file = staged_root.join('job_script_content.sh')
    def job_script_options_file = staged_root.join('job_script_options.json')
    def shell_path = Pathname.new('/bin/bash')

    # session.rb#user_context: read back from user_defined_context.json.
    def user_context
      return @user_context if @user_context

      @user_context = user_defined_context_file.exist? ? JSON.parse(user_defined_context_file.read) : {}
    rescue StandardError
      {}
    end

    # session.rb#connect: connection.yml as an OpenStruct. Missing file →
    # Errno::ENOENT, as on OOD before the job wrote it.
    def connect
      if @connection.nil? && @staged_root.to_s.empty?
        raise Errno::ENOENT, 'connection.yml (no staged root given)'
      end

      data = @connection.nil? ? connect_file.read : @connection
      data = YAML.safe_load(data) if data.is_a?(String)
      OpenStruct.new(data || {})
    end

    def info
      @info ||= OodHarness::JobInfo.new(id: job_id, status: OodHarness::JobStatus.new(:running))
    end

    def status
      info.status
    end

    %i[running? queued? completed? held? suspended? starting?].each do |name|
      define_method(name) do
        state = { held?: :queued_held?, starting?: nil }.fetch(name, name)
        state ? status.public_send(state) : false
      end
    end

    # session.rb#stage: rsync -rlp template/ (minus *.erb), write
    # user_defined_context.json, then render every template/**/*.erb into the
    # staged root without the .erb, giving it the .erb file's mode.
    def stage(template_root, context)
      make_staged_root
      sync_template(template_root)
      user_defined_context_file.write(JSON.pretty_generate(context.user_defined_context))
      written = []
      binding = TemplateBinding.new(self, context).get_binding
      template_files(template_root).each do |file|
        written << render_template_file(file, template_root, binding)
      end
      written
    end

    private

    def make_staged_root
      FileUtils.mkdir_p(staged_root.to_s)
      OodHarness::HostFS.chmod(staged_root, 0o700) unless @staged_root_existed
    end

    def template_files(root)
      Pathname.glob(root.join('**', '*.erb').to_s).select(&:file?).sort
    end

    def render_template_file(file, template_root, binding)
      rendered = OodHarness.render_erb(file.read, binding)
      relative = file.to_s.delete_prefix("#{template_root}/")
      output = staged_root.join(relative).sub_ext('')
      output.write(rendered)
      OodHarness::HostFS.chmod(output, OodHarness::HostFS.mode(file))
      output.to_s
    end

    # rsync -rlp --exclude '*.erb' (v3.1.16; main also excludes '.*.swp').
    # -r recurse, -l symlinks stay symlinks, -p permissions copied exactly —
    # the top directory's too: template/'s mode lands on the staged root.
    def sync_template(template_root)
      raise "rsync: change_dir \"#{template_root}\" failed: No such file or directory (2)" unless template_root.directory?

      copy_tree(template_root, staged_root)
      OodHarness::HostFS.chmod(staged_root, OodHarness::HostFS.mode(template_root))
    end

    def copy_tree(source_dir, target_dir)
      source_dir.children.sort.each do |source|
        next if excluded?(source.basename.to_s)

        target = target_dir.join(source.basename)
        if source.symlink?
          FileUtils.rm_f(target.to_s) if target.symlink? || target.file?
          File.symlink(File.readlink(source.to_s), target.to_s)
        elsif source.directory?
          FileUtils.mkdir_p(target.to_s)
          copy_tree(source, target)
          OodHarness::HostFS.chmod(target, OodHarness::HostFS.mode(source))
        elsif source.file?
          File.binwrite(target.to_s, File.binread(source.to_s))
          OodHarness::HostFS.chmod(target, OodHarness::HostFS.mode(source))
        end
      end
    end

    def excluded?(basename)
      File.fnmatch('*.erb', basename, File::FNM_DOTMATCH) ||
        (settings_swp_exclusion? && File.fnmatch('.*.swp', basename, File::FNM_DOTMATCH))
    end

    def settings_swp_exclusion?
      @app.settings['oodVersion'].to_s != '3.1'
    end

    public

    def staged_root_existed!(flag)
      @staged_root_existed = flag
    end
  end

end

module OodHarness
  # ===========================================================================
  # Job info and status, the little of OodCore::Job::Info the session card's
  # info.md.erb could use.
  # ===========================================================================
  class JobStatus
    attr_reader :state

    def initialize(state)
      @state = state.to_s.to_sym
    end

    def to_sym
      state
    end

    def to_s
      state.to_s
    end

    %i[undetermined queued queued_held running suspended completed].each do |name|
      define_method(:"#{name}?") { state == name }
    end
  end

  JobInfo = Struct.new(
    :id, :status, :allocated_nodes, :submit_host, :job_name, :job_owner, :accounting_id,
    :procs, :queue_name, :wallclock_time, :wallclock_limit, :cpu_time, :submission_time,
    :dispatch_time, :native, :gpus, :tasks, keyword_init: true
  )
  NodeInfo = Struct.new(:name, :procs, :features, keyword_init: true)

  # ===========================================================================
  # ood_core's OodCore::Job::Script (v0.29.0): which submit `script:` keys the
  # adapter ever sees, and how each is coerced. Unknown keys vanish silently.
  # ===========================================================================
  module JobScript
    COERCIONS = {
      args: ->(v) { v.map(&:to_s) },
      submit_as_hold: ->(v) { v },
      rerunnable: ->(v) { v },
      job_environment: ->(v) { v.each_with_object({}) { |(k, x), h| h[k.to_s] = x.to_s } },
      workdir: ->(v) { v.to_s },
      email: ->(v) { Array.wrap(v).map(&:to_s) },
      email_on_started: ->(v) { v },
      email_on_terminated: ->(v) { v },
      job_name: ->(v) { v.to_s },
      shell_path: ->(v) { v.to_s },
      input_path: ->(v) { v.to_s },
      output_path: ->(v) { v.to_s },
      error_path: ->(v) { v.to_s },
      reservation_id: ->(v) { v.to_s },
      queue_name: ->(v) { v.to_s },
      priority: ->(v) { v.to_i },
      start_time: ->(v) { v.to_i },
      wall_time: ->(v) { v.to_i },
      accounting_id: ->(v) { v.to_s },
      job_array_request: ->(v) { v.to_s },
      qos: ->(v) { v.to_s },
      gpus_per_node: ->(v) { v.to_i },
      native: ->(v) { v },
      copy_environment: ->(v) { !!v },
      cores: ->(v) { v.to_i }
    }.freeze

    module_function

    # Returns [coerced options, dropped keys]. Raises like Script.new would.
    def coerce(options)
      kept = {}
      dropped = []
      options.each do |key, value|
        coercion = COERCIONS[key.to_sym]
        if coercion.nil?
          dropped << key.to_s
        elsif !value.nil? || key.to_sym == :copy_environment
          kept[key.to_sym] = value.nil? ? nil : coercion.call(value)
        end
      end
      [kept.compact, dropped]
    end
  end

  # ===========================================================================
  # One Launch click: session_contexts_controller#create + Session#save.
  # ===========================================================================
  class Launch
    def initialize(app, request, settings)
      @app = app
      @request = request
      @settings = settings
    end

    def run
      return failure('form', @app.validation_reason) unless @app.valid?

      context = @app.build_session_context
      ignored = apply_form_values(context)
      session = new_session(context)
      base = { 'values' => context.to_h.transform_keys(&:to_s), 'ignoredValues' => ignored,
               'sessionId' => session.id, 'stagedRoot' => session.staged_root.to_s }
      submit_hash = compute_submit(context, session)
      return base.merge(submit_hash) if submit_hash['ok'] == false

      base.merge(stage_and_describe(context, session, submit_hash.fetch('submit')))
    rescue StandardError => e
      failure('form', e.message, e)
    rescue ScriptError => e
      # Session#save rescues StandardError only: a SyntaxError in ERB escapes
      # it, and the researcher gets the dashboard's error page.
      failure('uncaught', e.message, e)
    end

    private

    def fmt
      @settings.fetch('format', 'slurm')
    end

    # The browser posts every visible field; the controller permits only the
    # non-fixed ids (params.permit(context.attributes.keys)).
    def apply_form_values(context)
      context.each { |attribute| attribute.value = attribute.untouched_form_value unless attribute.fixed? }
      permitted = context.attributes.keys
      ignored = []
      @request.fetch('values', {}).each do |id, value|
        if permitted.include?(id.to_s)
          context.public_send("#{id}=", value.to_s)
        else
          ignored << id.to_s
        end
      end
      ignored
    end

    def new_session(context)
      session = BatchConnect::Session.new(@app)
      session.id = @request['sessionId'] || SecureRandom.uuid
      session.created_at = @request['createdAt'] || Time.now.to_i
      session.cluster_id = context['cluster']&.value.to_s
      root = @request['stagedRoot'] || default_staged_root(session)
      session.staged_root_existed!(File.directory?(root))
      session.staged_root = root
      session
    end

    # Where OOD would put it: ~/ondemand/data/sys/dashboard/batch_connect/<token>/output/<id>
    def default_staged_root(session)
      File.join(Dir.home, 'ondemand/data/sys/dashboard/batch_connect', @app.token, 'output', session.id)
    rescue ArgumentError
      File.join('/home/user/ondemand/data/sys/dashboard/batch_connect', @app.token, 'output', session.id)
    end

    # session.rb#save: submit options are computed BEFORE anything is staged;
    # an exception there (a raise in submit.yml.erb) is the researcher's error
    # message and nothing is staged.
    def compute_submit(context, session)
      debug_root = @request['stagedRoot'] ? session.staged_root : nil
      submit = @app.submit_opts(context, fmt: fmt, staged_root: session.staged_root, debug_root: debug_root)
      session.cluster_id = submit.fetch(:cluster, session.cluster_id).to_s
      return failure('submit', MESSAGES[:missing_cluster]) if session.cluster_id.empty?

      { 'submit' => submit }
    rescue StandardError => e
      failure('submit', e.message, e)
    end

    def stage_and_describe(context, session, submit)
      result = { 'ok' => true, 'clusterId' => session.cluster_id }
      if @request['stagedRoot']
        begin
          result['stagedFiles'] = session.stage(@app.root.join('template'), context)
          result['userContext'] = JSON.parse(session.user_defined_context_file.read)
        rescue StandardError => e
          return result.merge(failure('stage', e.message, e))
        end
      end
      result.merge(describe_submission(session, submit))
    end

    # session.rb#submit / #script_options / #script_content, up to the point
    # where the adapter would be called.
    def describe_submission(session, submit)
      opts = submit.compact
      batch_connect = opts.fetch(:batch_connect, {}).to_h.compact
      script_in = opts.fetch(:script, {}).to_h.compact
      defaults = { job_name: job_name, workdir: session.staged_root.to_s,
                   output_path: session.output_file.to_s, shell_path: session.shell_path.to_s }
      script, dropped = JobScript.coerce(defaults.merge(script_in))
      {
        'submit' => OodHarness.as_json(submit),
        'batchConnect' => OodHarness.as_json(batch_connect.merge(template: batch_connect.fetch(:template, 'basic'))),
        'script' => OodHarness.as_json(script),
        'droppedScriptKeys' => dropped
      }
    rescue StandardError => e
      failure('submit', e.message, e)
    end

    # session.rb#job_name: [OOD_PORTAL, app path under /pun, token].
    def job_name
      env = @settings.fetch('env', {})
      [env['OOD_PORTAL'], env.fetch('RAILS_RELATIVE_URL_ROOT', '/pun/sys/dashboard').to_s.sub(%r{^/[^/]+/}, ''), @app.token]
        .reject(&:blank?).join('/')
    end

    def failure(step, message, exception = nil)
      out = { 'ok' => false, 'failedAt' => step, 'error' => message.to_s }
      out['errorClass'] = exception.class.name if exception
      out
    end
  end

  # ===========================================================================
  # The session card: info.md.erb / completed.md.erb with the Session's own
  # binding (session.rb#render_info_view), view.html.erb with the OpenStruct
  # of connection.yml as self (connections/_custom.html.erb).
  # ===========================================================================
  class Views
    def initialize(app, request)
      @app = app
      @request = request
    end

    def run
      session = build_session
      info, info_error = render_info(session, @app.session_info_view, 'info')
      completed, completed_error = render_info(session, @app.session_completed_view, 'completed')
      view, view_error = render_view(session)
      { 'ok' => [info_error, completed_error, view_error].all?(&:nil?),
        'infoMd' => info, 'infoError' => info_error,
        'completedMd' => completed, 'completedError' => completed_error,
        'viewHtml' => view, 'viewError' => view_error }
    end

    private

    def build_session
      session = BatchConnect::Session.new(@app)
      session.id = @request['sessionId'] || SecureRandom.uuid
      session.job_id = @request['jobId']
      session.created_at = @request['createdAt'] || Time.now.to_i
      session.cluster_id = @request['clusterId']
      session.staged_root = @request['stagedRoot'] || ''
      session.user_context = @request['userContext'] if @request['userContext']
      session.connection = @request['connection'] unless @request['connection'].nil?
      session.info = job_info(session)
      session
    end

    def job_info(session)
      given = @request.fetch('info', {})
      JobInfo.new(
        id: session.job_id, status: JobStatus.new(@request.fetch('status', 'running')),
        job_name: given['jobName'], queue_name: given['queueName'], accounting_id: given['accountingId'],
        wallclock_time: given['wallclockTime'], wallclock_limit: given['wallclockLimit'],
        allocated_nodes: Array(given['nodes']).map { |n| NodeInfo.new(name: n) }, native: (given['native'] || {}).transform_keys(&:to_sym)
      )
    end

    # session.rb#render_info_view: failures become a message, not an exception.
    def render_info(session, template, which)
      return [nil, nil] unless template

      [OodHarness.render_erb(template, session.instance_eval { binding }), nil]
    rescue StandardError => e
      [nil, "Error when rendering #{which} view: #{e.class} - #{e.message}"]
    rescue ScriptError => e
      # session.rb rescues StandardError only: the whole page would fail.
      [nil, "uncaught #{e.class} - #{e.message} (the dashboard would show its error page)"]
    end

    def render_view(session)
      template = @app.session_view
      return [nil, nil] unless template

      connect = session.connect
      [OodHarness.render_erb(template, connect.instance_eval { binding }), nil]
    rescue StandardError, ScriptError => e
      [nil, "#{e.class}: #{e.message}"]
    end
  end

  # ===========================================================================
  # Batch driver: one Ruby process renders every request.
  # ===========================================================================
  module Main
    module_function

    def run(input)
      batch = JSON.parse(input)
      settings = batch.fetch('settings', {})
      batch.fetch('requests').map { |request| run_one(request, settings) }
    end

    # The dashboard caches an App (its parsed form.yml) for hours too; each
    # launch still gets fresh attribute objects (App#build_session_context).
    def app_for(app_dir, settings)
      @apps ||= {}
      @apps[[app_dir, settings]] ||= BatchConnect::App.new(app_dir, settings)
    end

    def run_one(request, settings)
      settings = settings.merge(request.fetch('settings', {}))
      app = app_for(request.fetch('appDir'), settings)
      captured = StringIO.new
      result = with_stdout(captured) do
        case request.fetch('kind')
        when 'launch' then Launch.new(app, request, settings).run
        when 'views' then Views.new(app, request).run
        else { 'ok' => false, 'failedAt' => 'harness', 'error' => "unknown request kind #{request['kind'].inspect}" }
        end
      end
      result.merge('kind' => request['kind'], 'printed' => captured.string)
    rescue Interrupt
      raise
    rescue Exception => e # rubocop:disable Lint/RescueException
      # Anything else (SystemExit from an `exit` in ERB, a harness bug) is
      # reported for this request so the rest of the batch still renders.
      { 'ok' => false, 'failedAt' => 'harness', 'error' => e.message, 'errorClass' => e.class.name,
        'kind' => request['kind'], 'printed' => captured ? captured.string : '' }
    end

    # ERB code that prints must not corrupt our JSON on stdout.
    def with_stdout(io)
      saved = $stdout
      $stdout = io
      yield
    ensure
      $stdout = saved
    end
  end
end

if $PROGRAM_NAME == __FILE__ || File.basename($PROGRAM_NAME.to_s) == File.basename(__FILE__)
  results = OodHarness::Main.run($stdin.read)
  $stdout.write(JSON.generate(OodHarness.as_json(results)))
  $stdout.flush
end
