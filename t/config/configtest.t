# apachectl -t on small configurations: the shipped files are accepted, an incomplete hub is
# refused with the directive and the reason, and bad values are refused by their parser.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use lib 't/lib';
use OSTest;

my $load = "LoadModule ordersync_module \@SO\@\n";
my $dbd  = "LoadModule dbd_module /usr/lib/apache2/modules/mod_dbd.so\n";
my $store = "DBDriver sqlite3\nDBDParams \@DIR\@/os.db\n";
my $src  = "OrderSyncSource demo key=file:\@KEYS\@/demo.key\n";
my $loc  = "<Location /ordersync>\n  SetHandler ordersync\n</Location>\n";
my $top  = Apache::Test::vars()->{top_dir};

# apachectl -t exits 1 on a refused configuration; the message names the directive (with its
# file and line where the module reports it) and the reason
my $at = qr{ordersync: \S+/httpd\.conf:\d+:};
my $two = "OrderSyncSource a key=file:\@KEYS\@/demo.key prefix=%s\nOrderSyncSource b key=file:\@KEYS\@/mage2.key prefix=%s\n";
my @bad = (
    # [ config body, pattern the output must show, name ]
    [ "$dbd$load$src$loc", qr/$at the hub at \/ordersync has no store: set DBDriver sqlite3 and DBDParams/, 'handler without a store' ],
    [ "$load$src$loc", qr/$at mod_ordersync needs mod_dbd for its store \(LoadModule dbd_module/, 'mod_dbd missing is named' ],
    [ "$load$store$src$loc", qr/Invalid command 'DBDriver', perhaps misspelled or defined by a module not included/, 'DBDriver without mod_dbd: httpd names it' ],
    [ "$dbd$load$store$loc", qr/$at the hub at \/ordersync has no OrderSyncSource: declare at least one webshop/, 'hub without a source' ],
    [ "$dbd$load$store" . "OrderSyncSource demo\n$loc", qr/OrderSyncSource needs a source id and at least one key=\.\.\.: OrderSyncSource <source_id> key=file:/, 'source without a key' ],
    [ "$dbd$load$store" . "OrderSyncSource demo prefix=X-\n$loc", qr/OrderSyncSource demo: no key=\.\.\. given; every source needs an intake key/, 'source with options but no key' ],
    [ "$dbd$load$store" . "OrderSyncSource demo key=\${OS_UNSET_VAR_FOR_TEST}\n$loc", qr/$at OrderSyncSource demo: key still contains '\$\{\.\.\.\}': the environment variable OS_UNSET_VAR_FOR_TEST is not set \(Apache reads \/etc\/apache2\/envvars when it starts: set it there and restart, not graceful; or read the key from a file with file:\/path\)/, 'unset ${VAR} key, with the name' ],
    [ "$dbd$load$store$src" . "OrderSyncAdminKey \${OS_UNSET_VAR_FOR_TEST}\n$loc", qr/$at OrderSyncAdminKey still contains '\$\{\.\.\.\}': the environment variable OS_UNSET_VAR_FOR_TEST is not set/, 'unset ${VAR} admin key' ],
    # an unset variable is reported at the directive's own line, not at the SetHandler's
    [ "$dbd$load$store$src\n\n" . "OrderSyncWebhookSecret \${OS_OTHER_UNSET_VAR}\n$loc", qr/ordersync: \S+\/httpd\.conf:(\d+): OrderSyncWebhookSecret still contains .* variable OS_OTHER_UNSET_VAR is not set/, 'the unset variable\'s own line' ],
    # the SQLite store: an absolute path, in a directory that exists and Apache's user can write
    [ "$dbd$load" . "DBDriver sqlite3\nDBDParams ordersync.db\n$src$loc", qr/$at DBDParams ordersync\.db: the SQLite store must be an absolute path: 'ordersync\.db' would be opened relative to the server's working directory/, 'a relative store path' ],
    [ "$dbd$load" . "DBDriver sqlite3\n$src$loc", qr/$at DBDriver sqlite3 without DBDParams: give the store's file/, 'SQLite without DBDParams' ],
    [ "$dbd$load" . "DBDriver sqlite3\nDBDParams \@DIR\@/missing/os.db\n$src$loc", qr/$at DBDParams \S+\/missing\/os\.db: the store's directory \S+\/missing does not exist: create it, writable by \S+ \(install -d -o/, 'a missing store directory, named' ],
    [ "$dbd$load" . "DBDriver sqlite3\nDBDParams /proc/os.db\n$src$loc", qr/$at DBDParams \/proc\/os\.db: the store's directory \/proc is not writable by the user Apache runs as \((\S+);/, 'a store directory Apache\'s user cannot write: path and user' ],
    [ "$dbd$load" . "DBDriver sqlite3\nDBDParams /etc/hostname/os.db\n$src$loc", qr/$at DBDParams \/etc\/hostname\/os\.db: \/etc\/hostname, the store's directory, is not a directory/, 'a store "directory" that is a file' ],
    [ "$dbd$load$store$src" . "OrderSyncWebhookSecret short\n$loc", qr/$at OrderSyncWebhookSecret from a literal value is shorter than 16 characters/, 'too short webhook secret' ],
    [ "$dbd$load$store" . "OrderSyncSource demo key=short\n$loc", qr/$at OrderSyncSource demo: key from a literal value is shorter than 16 characters/, 'too short key' ],
    [ "$dbd$load$store" . sprintf($two, 'X-', 'X-') . $loc, qr/$at sources 'a' \(\S+:\d+\) and 'b' have the same reference prefix 'X-': their orders could collide/, 'two sources, same prefix' ],
    [ "$dbd$load$store" . "OrderSyncSource a key=file:\@KEYS\@/demo.key\nOrderSyncSource b key=file:\@KEYS\@/mage2.key\n$loc", qr/$at sources 'a' \(\S+:\d+\) and 'b' have the same reference prefix '':/, 'two sources, no prefix' ],
    [ "$dbd$load$store" . sprintf($two, 'DEMO-', 'DEMO-W') . $loc,
      qr/$at the reference prefix 'DEMO-' of source 'a' \(\S+\/httpd\.conf:\d+\) starts the prefix 'DEMO-W' of source 'b' \(\S+\/httpd\.conf:\d+\): reference 'W1' of 'a' and '1' of 'b' would both reach the warehouse as 'DEMO-W1'/,
      'overlapping prefixes DEMO- and DEMO-W' ],
    [ "$dbd$load$store" . sprintf($two, 'DEMO-W', 'DEMO-') . $loc,
      qr/$at the reference prefix 'DEMO-' of source 'b' \(\S+:\d+\) starts the prefix 'DEMO-W' of source 'a' \(\S+:\d+\)/,
      'overlapping prefixes, the longer first' ],
    [ "$dbd$load$store" . "OrderSyncSource a key=file:\@KEYS\@/demo.key\nOrderSyncSource b key=file:\@KEYS\@/mage2.key prefix=B-\n$loc",
      qr/$at the reference prefix '' of source 'a' \(\S+:\d+\) starts the prefix 'B-' of source 'b' \(\S+:\d+\): reference 'B-1' of 'a' and '1' of 'b' would both reach the warehouse as 'B-1'/,
      'an empty prefix beside a non-empty one' ],
    [ "$dbd$load$store" . "OrderSyncSource demo key=file:/nonexistent/k\n$loc", qr/OrderSyncSource: cannot read key file '\/nonexistent\/k': No such file/, 'unreadable key file' ],
    [ "$dbd$load$store" . "OrderSyncSource 'de mo' key=file:\@KEYS\@/demo.key\n$loc", qr/OrderSyncSource: source id 'de mo' may use only letters, digits/, 'bad source id' ],
    [ "$dbd$load$store" . "OrderSyncSource demo key=file:\@KEYS\@/demo.key colour=red\n$loc", qr/OrderSyncSource demo: unknown option 'colour' \(known: key=, prefix=, webhook=, entity=, clougistic_key=\)/, 'unknown source option' ],
    [ "$dbd$load$store" . "OrderSyncSource demo key=file:\@KEYS\@/demo.key\nOrderSyncClougisticURL http://127.0.0.1:9\n$loc",
      qr/the hub at \/ordersync delivers to http:\/\/127.0.0.1:9 but has no OrderSyncClougisticEntity and no OrderSyncClougisticKey/,
      'a Clougistic URL without entity and key' ],
    [ "$dbd$load$store" . "OrderSyncSource demo key=file:\@KEYS\@/demo.key entity=7\nOrderSyncClougisticURL http://127.0.0.1:9\n$loc",
      qr/OrderSyncSource demo: entity= and clougistic_key= go together/, "a source's entity without its key" ],
    [ "$load" . "OrderSyncClougisticURL ftp://x\n", qr/OrderSyncClougisticURL must be Clougistic's base URL, http:\/\/ or https:\/\//, 'a Clougistic URL that is not http(s)' ],
    [ "$load" . "OrderSyncClougisticEntity 'a b'\n", qr/OrderSyncClougisticEntity: an entity id is 1-64 letters, digits/, 'a bad entity id' ],
    [ "$load" . "OrderSyncRetry 5x\n", qr/OrderSyncRetry: '5x' is not a duration/, 'a retry schedule that is not a duration' ],
    [ "$load" . "OrderSyncRetry 10s 1s\n", qr/OrderSyncRetry: the longest wait \(1s\) is shorter than the first \(10s\)/, 'a retry maximum below the first wait' ],
    [ "$load" . "OrderSyncClougisticCAFile /nonexistent/ca.pem\n", qr/OrderSyncClougisticCAFile: '\/nonexistent\/ca.pem' is not a readable file/, 'a missing CA file' ],
    [ "$load" . "OrderSyncDispatchConcurrency 0\n", qr/OrderSyncDispatchConcurrency must be an integer in 1..256/, 'concurrency out of range' ],
    [ "$dbd$load$store$src" . "OrderSyncSource demo key=file:\@KEYS\@/mage2.key prefix=B\n$loc", qr/OrderSyncSource: source 'demo' is declared twice/, 'duplicate source' ],
    [ "$dbd$load$store$src" . "OrderSyncSource x key=file:\@KEYS\@/mage2.key webhook=ftp://x\n$loc", qr/OrderSyncSource x: webhook must be an http:\/\/ or https:\/\/ URL, got 'ftp:\/\/x'/, 'bad webhook URL' ],
    [ "$dbd$load$store$src" . "OrderSyncMaxBody 10\n$loc", qr/OrderSyncMaxBody must be an integer in 256\.\.67108864, got '10'/, 'max body range' ],
    [ "$dbd$load$store$src" . "OrderSyncMaxDepth lots\n$loc", qr/OrderSyncMaxDepth must be an integer in 4\.\.126, got 'lots'/, 'max depth not a number' ],
    # the generator writes 127 levels and every order is sent inside one wrapper
    [ "$dbd$load$store$src" . "OrderSyncMaxDepth 127\n$loc", qr/OrderSyncMaxDepth must be an integer in 4\.\.126, got '127'/, 'max depth above the generator\'s room' ],
    [ "$dbd$load$store$src" . "OrderSyncMaxItems 0\n$loc", qr/OrderSyncMaxItems must be an integer in 1\.\.100000, got '0'/, 'max items range' ],
    [ "$dbd$load$store$src" . "OrderSyncMaxString 99999999\n$loc", qr/OrderSyncMaxString must be an integer in 16\.\.1048576, got '99999999'/, 'max string range' ],
    [ "$dbd$load$store$src" . "OrderSyncQueueMax -1\n$loc", qr/OrderSyncQueueMax must be an integer in 1\.\.100000000, got '-1'/, 'queue max range' ],
    [ "$dbd$load$store$src" . "OrderSyncStoreTimeout 1\n$loc", qr/OrderSyncStoreTimeout must be an integer in 10\.\.600000, got '1'/, 'store timeout range' ],
    [ "$dbd$load$store$src" . "OrderSyncStoreMaxSize 100\n$loc", qr/OrderSyncStoreMaxSize must be an integer in 65536\.\./, 'store max size range' ],
    [ "$dbd$load$store$src" . "OrderSyncDurability sometimes\n$loc", qr/OrderSyncDurability must be 'normal' or 'full', got 'sometimes'/, 'durability value' ],
    [ "$dbd$load$store$src" . "<Location /x>\nOrderSyncAdminAuth maybe\n</Location>\n$loc", qr/OrderSyncAdminAuth must be 'key' or 'apache', got 'maybe'/, 'admin auth value' ],
    [ "$dbd$load$store$src" . "<Location /x>\nOrderSyncSource demo2 key=file:\@KEYS\@/mage2.key\n</Location>\n$loc", qr/OrderSyncSource not allowed in <Location> context/, 'source in a <Location>' ],
    [ "$dbd$load$store$src" . "<LocationMatch ^/os>\nSetHandler ordersync\n</LocationMatch>\n", qr/$at SetHandler ordersync needs a plain <Location \/path>, not a regular expression/, 'LocationMatch mount' ],
    [ "$dbd$load$store$src" . "SetHandler ordersync\n", qr/$at SetHandler ordersync must be inside a <Location>/, 'handler outside a Location' ],
    [ "$dbd$load$store$src<VirtualHost 127.0.0.1:1>\nServerName v\n<Location /hub>\nSetHandler ordersync\n</Location>\n</VirtualHost>\n"
      . "<VirtualHost 127.0.0.1:1>\nServerName w\nOrderSyncSource w1 key=\${OS_UNSET_VAR_FOR_TEST}\n<Location /hub>\nSetHandler ordersync\n</Location>\n</VirtualHost>\n",
      qr/$at OrderSyncSource w1: key still contains '\$\{\.\.\.\}'/, 'vhost with its own broken source' ],
    # the store's lock: a POSIX semaphore stays taken when its holder is killed
    [ "Mutex posixsem ordersync-store\n$dbd$load$store$src$loc",
      qr/$at Mutex posixsem ordersync-store: the mechanism of the store's lock \(ordersync-store\) 'posixsem' is a POSIX semaphore, which stays taken when the process holding it is killed/,
      'Mutex posixsem for the store' ],
    [ "Mutex sem ordersync-store\n$dbd$load$store$src$loc", qr/$at Mutex sem ordersync-store: .* 'sem' is a POSIX semaphore/, 'Mutex sem (POSIX here) for the store' ],
    [ "Mutex posixsem\n$dbd$load$store$src$loc", qr/$at Mutex posixsem: .* 'posixsem' is a POSIX semaphore/, 'Mutex posixsem as the default' ],
    [ "<IfModule mod_watchdog.c>\nMutex posixsem:/tmp default\n</IfModule>\nMutex fcntl watchdog-callback\n$dbd$load$store$src$loc", qr/$at Mutex posixsem:\/tmp default: .* 'posixsem' is a POSIX semaphore/, 'Mutex posixsem default, inside <IfModule>' ],
    # OrderSyncStoreMaxSize is SQLite's (page count); PostgreSQL would ignore it
    [ "$dbd$load" . "DBDriver pgsql\nDBDParams \"dbname=x\"\n$src" . "OrderSyncStoreMaxSize 1048576\n$loc",
      qr/$at OrderSyncStoreMaxSize applies to a SQLite store only, and the hub at \/ordersync uses DBDriver pgsql \(\S+:\d+\), where it would be ignored/,
      'OrderSyncStoreMaxSize with PostgreSQL' ],
    [ "$dbd$load" . "DBDriver pgsql\nDBDParams \"dbname=x\"\n$src" . "OrderSyncStoreMaxSize 1048576\n<VirtualHost 127.0.0.1:1>\nServerName v\n$loc</VirtualHost>\n",
      qr/$at OrderSyncStoreMaxSize applies to a SQLite store only, and the hub at \/ordersync uses DBDriver pgsql/,
      'OrderSyncStoreMaxSize inherited by a PostgreSQL virtual host' ],
);

my @good = (
    [ "$load", 'the module alone, no hub: Apache starts' ],
    [ "$load" . "OrderSyncSource demo key=\${OS_UNSET_VAR_FOR_TEST}\n", 'an unset key where no hub is mounted does not stop Apache' ],
    [ "$dbd$load$store$src$loc", 'a minimal hub' ],
    [ "$dbd$load$store$src" . "OrderSyncMaxDepth 126\n$loc", 'OrderSyncMaxDepth at its maximum, 126' ],
    [ "$dbd$load$store" . "OrderSyncSource demo key=file:\@KEYS\@/demo.key prefix=D-\nOrderSyncSource mage2 key=file:\@KEYS\@/mage2.key key=file:\@KEYS\@/demo-next.key prefix=M-\n"
      . "OrderSyncDurability full\nOrderSyncMaxBody 2048\nOrderSyncMaxDepth 8\nOrderSyncMaxItems 5\n"
      . "OrderSyncMaxString 64\nOrderSyncQueueMax 10\nOrderSyncStoreTimeout 100\nOrderSyncBatchMax 8\n"
      . "OrderSyncStoreMaxSize 1048576\nOrderSyncAdminKey file:\@KEYS\@/admin.key\nOrderSyncWebhookSecret file:\@KEYS\@/webhook.key\n$loc"
      . "<Location /ordersync/admin>\nOrderSyncAdminAuth apache\nRequire all granted\n</Location>\n", 'every directive with a valid value' ],
    [ "$dbd$load<VirtualHost 127.0.0.1:1>\nServerName v\n$store$src$loc</VirtualHost>\n", 'a hub inside a virtual host' ],
    [ "$dbd$load$store$src<IfModule no_such_module>\nSetHandler ordersync\n</IfModule>\n", 'a SetHandler in a skipped <IfModule> does not count' ],
    [ "$dbd$load$store" . "OrderSyncSource a key=file:\@KEYS\@/demo.key prefix=DEMO-\nOrderSyncSource b key=file:\@KEYS\@/mage2.key prefix=DEMOW-\n$loc", 'prefixes that share a start but neither starts the other (DEMO-, DEMOW-)' ],
    [ "Mutex posixsem ordersync-store\nMutex fcntl ordersync-store\n$dbd$load$store$src$loc", 'a later Mutex line for the store wins (fcntl)' ],
    [ "Mutex posixsem default\nMutex pthread ordersync-store\n$dbd$load$store$src$loc", 'a Mutex for the store wins over the default' ],
    [ "Mutex posixsem watchdog-callback\n$dbd$load$store$src$loc", 'a POSIX semaphore for another mutex is none of the hub\'s business' ],
    [ "Mutex sysvsem ordersync-store\n$dbd$load$store$src$loc", 'Mutex sysvsem (undone by the kernel) for the store' ],
    [ "Mutex flock ordersync-store\n$dbd$load$store$src$loc", 'Mutex flock for the store' ],
    [ "$load" . "Mutex posixsem\n", 'Mutex posixsem where no hub is mounted does not stop Apache' ],
    [ "$dbd$load" . "DBDriver pgsql\nDBDParams \"dbname=x\"\n$src<VirtualHost 127.0.0.1:1>\nServerName v\n$store" . "OrderSyncStoreMaxSize 1048576\n$loc</VirtualHost>\n",
      'OrderSyncStoreMaxSize in a SQLite virtual host of a PostgreSQL server' ],
);

# the shipped files, as a2enmod would include them, and the example site
my $shipped = read_file("$top/conf/ordersync.load") . read_file("$top/conf/ordersync.conf");
$shipped =~ s{/usr/lib/apache2/modules/mod_ordersync.so}{\@SO\@};
my $site = read_file("$top/conf/example-site.conf");
$site =~ s{/etc/apache2/ordersync/webshop1.key}{\@KEYS\@/demo.key};
$site =~ s{/etc/apache2/ordersync/(admin|webhook).key}{\@KEYS\@/$1.key}g;
$site =~ s{/var/lib/ordersync}{\@DIR\@}g;
$site =~ s{^Listen 8470\n}{}m;
$site =~ s{\*:8470}{127.0.0.1:1}g;
$site =~ s{\$\{APACHE_LOG_DIR\}}{\@DIR\@}g;

plan tests => 2 * @bad + @good + 3;

for my $b (@bad) {
    my ($rc, $out) = configtest($b->[0]);
    is($rc, 1, "refused (exit 1): $b->[2]") or diag($out);
    like($out, $b->[1], "message: $b->[2]") or diag($out);
}
for my $g (@good) {
    my ($rc, $out) = configtest($g->[0]);
    is($rc, 0, "accepted: $g->[1]") or diag($out);
}
my ($rc, $out) = configtest($shipped);
is($rc, 0, 'conf/ordersync.load + ordersync.conf as shipped are accepted') or diag($out);
($rc, $out) = configtest("$dbd$shipped$site");
is($rc, 0, 'conf/example-site.conf is accepted') or diag($out);
($rc, $out) = configtest("$dbd$site");
is($rc, 0, 'conf/example-site.conf with the module not loaded: Apache starts (<IfModule>)') or diag($out);
