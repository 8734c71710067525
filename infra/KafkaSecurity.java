// make up, SECURITY=on: the SCRAM users and ACLs of the local Kafka, applied through the Admin API
// as the admin user (infra/kafka.sh kafka_security_apply). Run by the java launcher from source.
//   java -cp "<kafka libs>/*" infra/KafkaSecurity.java BOOTSTRAP ADMIN_CLIENT_PROPERTIES < acls
// Users: KAFKA_USERS (names), each password in KAFKA_PASSWORD_<name>: set at every run, so a
// changed password takes effect. ACLs from stdin, one a line: principal type pattern name operation
// (type topic|group|cluster, pattern literal|prefixed); those principals' other ACLs are removed.
import java.io.*;
import java.nio.file.*;
import java.util.*;
import java.util.stream.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.resource.*;

public class KafkaSecurity {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    try (Reader r = Files.newBufferedReader(Path.of(args[1]))) { props.load(r); }
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");

    List<AclBinding> want = new ArrayList<>();
    Set<String> principals = new TreeSet<>();
    for (String line : new BufferedReader(new InputStreamReader(System.in)).lines().toList()) {
      String[] f = line.trim().split("\\s+");
      if (f.length == 1 && f[0].isEmpty()) continue;
      if (f.length != 5) throw new IllegalArgumentException("bad ACL line: " + line);
      ResourceType type = ResourceType.fromString(f[1].toUpperCase(Locale.ROOT));
      PatternType pattern = PatternType.fromString(f[2].toUpperCase(Locale.ROOT));
      AclOperation op = AclOperation.fromString(f[4].toUpperCase(Locale.ROOT));
      if (type == ResourceType.UNKNOWN || pattern == PatternType.UNKNOWN || op == AclOperation.UNKNOWN)
        throw new IllegalArgumentException("bad ACL line: " + line);
      want.add(new AclBinding(new ResourcePattern(type, f[3], pattern), new AccessControlEntry(f[0], "*", op, AclPermissionType.ALLOW)));
      principals.add(f[0]);
    }

    try (Admin admin = Admin.create(props)) {
      List<UserScramCredentialAlteration> users = new ArrayList<>();
      for (String user : System.getenv().getOrDefault("KAFKA_USERS", "").trim().split("\\s+")) {
        if (user.isEmpty()) continue;
        String pw = System.getenv("KAFKA_PASSWORD_" + user);
        if (pw == null || pw.isEmpty()) throw new IllegalArgumentException("no password for Kafka user " + user);
        users.add(new UserScramCredentialUpsertion(user, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), pw));
      }
      if (!users.isEmpty()) admin.alterUserScramCredentials(users).all().get();
      System.out.println("SCRAM-SHA-512 credentials set for " + users.stream().map(UserScramCredentialAlteration::user).collect(Collectors.joining(", ")));

      // What those principals hold now, less what is wanted: removed. Then what is wanted: added (idempotent).
      Set<AclBinding> have = new HashSet<>(admin.describeAcls(AclBindingFilter.ANY).values().get());
      List<AclBindingFilter> drop = have.stream()
          .filter(b -> principals.contains(b.entry().principal()) && !want.contains(b))
          .map(AclBinding::toFilter).toList();
      if (!drop.isEmpty()) admin.deleteAcls(drop).all().get();
      List<AclBinding> add = want.stream().filter(b -> !have.contains(b)).toList();
      if (!add.isEmpty()) admin.createAcls(add).all().get();
      System.out.println("ACLs: " + want.size() + " wanted, " + add.size() + " added, " + drop.size() + " removed");
      for (AclBindingFilter b : drop) System.out.println("  removed " + b);
    }
  }
}
